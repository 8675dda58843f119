"""The account console (/account, SPEC §11) over the Chalice test client (no browser):
every page renders inside the one layout with its navigation bar, every POST needs
the CSRF token, each change works, lasting grants need a confirmation, and another
user's role or session cannot be touched."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.api.helpers import bearer, login, seed
from tests.api.test_pages_tokens import Browser, csrf, secret

PAGES = ["/account", "/account/password", "/account/sessions", "/account/tokens",
         "/account/apps", "/account/roles", "/account/security-log"]


@pytest.fixture
def browser(client: Any, ctr: Any) -> Browser:
    seed(ctr)
    return Browser(client)


def sign_in(browser: Browser, username: str = "alice", password: str = "password4alice",
            next_path: str = "/account") -> Any:
    page = browser.get("/account")
    return browser.post("/account/signin", {"csrf": csrf(page), "username": username,
                                            "password": password, "next": next_path})


def text(page: Any) -> str:
    return page.body.decode()


@pytest.mark.parametrize("path", PAGES)
def test_a_stranger_gets_the_console_sign_in_that_returns_to_the_page(browser, path):
    page = browser.get(path)
    assert page.status_code == 200 and "Sign in to your account" in text(page)
    assert f'name="next" value="{path}"' in text(page)
    r = browser.post("/account/signin", {"csrf": csrf(page), "username": "alice",
                                         "password": "password4alice", "next": path})
    assert r.status_code == 303 and r.headers["Location"] == path


def test_sign_in_never_returns_to_another_site(browser):
    r = sign_in(browser, next_path="//evil.example/x")
    assert r.status_code == 303 and r.headers["Location"] == "/account"


def test_a_wrong_password_gets_one_generic_answer(browser):
    r = sign_in(browser, password="not-the-password")
    assert r.status_code == 403 and "Invalid username or password" in text(r)


@pytest.mark.parametrize("path", PAGES)
def test_every_page_has_the_landmarks_and_marks_its_nav_item_current(browser, path):
    sign_in(browser)
    page = browser.get(path)
    html = text(page)
    assert page.status_code == 200, html
    assert '<header class="site">' in html and "<main" in html
    nav = re.search(r'<nav class="console" aria-label="Account">(.*?)</nav>', html, re.S).group(1)
    current = re.findall(r'<a href="([^"]+)" aria-current="page">', nav)
    assert current == [path]
    for item in ("/account/security", "/account/security-log", "/account/roles"):
        assert f'href="{item}"' in nav
    assert 'action="/account/signout"' in html     # the sign-out button in the header
    for field in re.findall(r'<input (?![^>]*type="(?:hidden|checkbox)")[^>]*id="([^"]+)"', html):
        assert f'for="{field}"' in html or "aria-label" in html, field


def test_profile_shows_who_is_signed_in(browser):
    sign_in(browser)
    html = text(browser.get("/account"))
    assert "alice" in html and "Alice Liddell" in html and "alice@example.com" in html
    assert "Member since" in html


def test_sign_out_from_the_header_ends_the_sign_in(browser):
    sign_in(browser)
    page = browser.get("/account")
    r = browser.post("/account/signout", {"csrf": csrf(page)})
    assert r.status_code == 303 and r.headers["Location"] == "/account"
    assert "Sign in to your account" in text(browser.get("/account"))


# -- password -----------------------------------------------------------------------------

def change(browser: Browser, **fields: str) -> Any:
    page = browser.get("/account/password")
    body = {"csrf": csrf(page), "current_password": "password4alice",
            "new_password": "a-new-secret-9", "confirm_password": "a-new-secret-9", **fields}
    return browser.post("/account/password", body)


def test_password_change_needs_the_current_password_and_writes_the_log(browser, client, ctr):
    sign_in(browser)
    wrong = change(browser, current_password="not-it")
    assert wrong.status_code == 403 and "Password confirmation failed" in text(wrong)
    done = change(browser)
    assert done.status_code == 200 and "Your password is changed" in text(done)
    assert login(client, password="password4alice").status_code == 400
    assert login(client, password="a-new-secret-9").status_code == 200
    events, _ = ctr.security_log.page(ctr.users.get(ctr.identities.find_user("alice").id).id,
                                      kind="password_changed")
    assert len(events) == 1 and "a-new-secret-9" not in str(events[0].view())


@pytest.mark.parametrize(("fields", "words"), [
    ({"new_password": "short", "confirm_password": "short"}, "at least 8 characters"),
    ({"new_password": "alice", "confirm_password": "alice"}, "not be your username"),
    ({"new_password": "password1", "confirm_password": "password1"}, "data breaches"),
    ({"new_password": "ALICE123x", "confirm_password": "ALICE123x"}, None),
    ({"confirm_password": "something-else"}, "differ"),
    ({"current_password": ""}, "current password"),
])
def test_new_password_rules(browser, client, fields, words):
    sign_in(browser)
    r = change(browser, **fields)
    if words is None:
        assert r.status_code == 200
        return
    assert r.status_code in (400, 403) and words in text(r)
    assert login(client).status_code == 200       # unchanged


def test_the_new_password_is_not_the_username(browser, client, ctr):
    ctr.identities.create_user("carol-long", "password4carol")
    sign_in(browser, "carol-long", "password4carol")
    r = change(browser, current_password="password4carol", new_password="Carol-Long",
               confirm_password="Carol-Long")
    assert r.status_code == 400 and "not be your username" in text(r)


def test_password_change_can_end_every_other_session(browser, client):
    sign_in(browser)
    other = Browser(client)
    sign_in(other)
    refresh = login(client, scope="openid offline_access").json_body["refresh_token"]
    kept = change(browser, end_others="yes")
    assert kept.status_code == 200 and "2 other session(s) ended" in text(kept)
    assert "Sign in to your account" in text(other.get("/account"))
    assert "Sign in to your account" not in text(browser.get("/account"))
    from tests.api.helpers import refresh as use_refresh
    assert use_refresh(client, refresh).status_code == 400


def test_password_change_without_ending_others_keeps_them(browser, client):
    sign_in(browser)
    other = Browser(client)
    sign_in(other)
    page = browser.get("/account/password")
    r = browser.post("/account/password", {"csrf": csrf(page), "current_password": "password4alice",
                                           "new_password": "a-new-secret-9",
                                           "confirm_password": "a-new-secret-9"})
    assert r.status_code == 200
    assert "Profile" in text(other.get("/account")) and "Sign in to" not in text(other.get("/account"))


# -- CSRF ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/account/password", "/account/sessions/end",
                                  "/account/sessions/end-others", "/account/roles",
                                  "/account/signout", "/account/tokens/generate",
                                  "/account/apps/withdraw", "/account/signin"])
def test_every_post_without_the_csrf_token_is_refused(browser, path):
    sign_in(browser)
    r = browser.post(path, {"csrf": "forged", "current_password": "password4alice",
                            "new_password": "a-new-secret-9", "confirm_password": "a-new-secret-9",
                            "name": "x", "username": "alice", "password": "password4alice"})
    assert r.status_code == 403 and "did not come from this site" in text(r)


# -- sessions -----------------------------------------------------------------------------

def test_sessions_lists_device_address_and_this_one_and_ends_one(browser, client):
    sign_in(browser)
    other = Browser(client)
    sign_in(other)
    page = browser.get("/account/sessions")
    html = text(page)
    assert html.count('name="session_id"') == 2 and "this session" in html
    ids = re.findall(r'name="session_id" value="([^"]+)"', html)
    r = browser.post("/account/sessions/end", {"csrf": csrf(page), "session_id": ids[1]})
    assert r.status_code == 200 and "The session has ended" in text(r)
    assert "Sign in to your account" in text(other.get("/account"))
    again = browser.post("/account/sessions/end", {"csrf": csrf(page), "session_id": ids[1]})
    assert again.status_code == 404


def test_another_users_session_cannot_be_ended(browser, client):
    bob = Browser(client)
    sign_in(bob, "bob", "password4bob")
    bob_id = re.findall(r'name="session_id" value="([^"]+)"', text(bob.get("/account/sessions")))[0]
    sign_in(browser)
    page = browser.get("/account/sessions")
    r = browser.post("/account/sessions/end", {"csrf": csrf(page), "session_id": bob_id})
    assert r.status_code == 404
    assert "Sign in to your account" not in text(bob.get("/account"))


def test_end_all_other_sessions_keeps_this_one(browser, client):
    sign_in(browser)
    others = [Browser(client), Browser(client)]
    for b in others:
        sign_in(b)
    page = browser.get("/account/sessions")
    r = browser.post("/account/sessions/end-others", {"csrf": csrf(page)})
    assert r.status_code == 200 and "2 other session(s) ended" in text(r)
    assert all("Sign in to your account" in text(b.get("/account")) for b in others)
    assert text(browser.get("/account/sessions")).count('name="session_id"') == 1


# -- roles and keys -----------------------------------------------------------------------

def make_role(browser: Browser, name: str = "ci") -> Any:
    page = browser.get("/account/roles")
    return browser.post("/account/roles", {"csrf": csrf(page), "name": name,
                                           "description": "CI jobs"})


def test_roles_create_add_policy_make_and_revoke_a_key_add_and_remove_trust(browser, client):
    sign_in(browser)
    made = make_role(browser)
    assert made.status_code == 303 and made.headers["Location"] == "/account/roles/alice.ci"
    page = browser.get("/account/roles/alice.ci")
    assert page.status_code == 200 and "alice.ci" in text(page)
    token = csrf(page)
    added = browser.post("/account/roles/alice.ci/policies",
                         {"csrf": token, "permission": "data:get@urn:tessera:data:alice.*"})
    assert added.status_code == 200 and "Policy added" in text(added)
    key = browser.post("/account/roles/alice.ci/keys", {"csrf": token, "description": "deploy"})
    assert key.status_code == 201 and "You will not see it again" in text(key)
    role_key = secret(key)
    assert client.http.get("/v1/me", headers=bearer(role_key)).status_code == 200
    assert role_key not in text(browser.get("/account/roles/alice.ci"))
    key_id = role_key.split(":")[0]
    revoked = browser.post(f"/account/roles/alice.ci/keys/{key_id}/revoke", {"csrf": token})
    assert revoked.status_code == 200 and "Key revoked" in text(revoked)
    assert client.http.get("/v1/me", headers=bearer(role_key)).status_code == 401
    trust = browser.post("/account/roles/alice.ci/trust", {
        "csrf": token, "issuer": "https://token.actions.githubusercontent.com",
        "audience": "tessera", "subject": "repo:acme/app:*"})
    assert trust.status_code == 200 and "<code>repo:acme/app:*</code>" in text(trust)
    trust_id = re.search(r'/trust/([^/"]+)/remove', text(trust)).group(1)
    gone = browser.post(f"/account/roles/alice.ci/trust/{trust_id}/remove", {"csrf": token})
    assert gone.status_code == 200 and "<code>repo:acme/app:*</code>" not in text(gone)
    policy_id = re.search(r'/policies/([^/"]+)/remove', text(gone)).group(1)
    dropped = browser.post(f"/account/roles/alice.ci/policies/{policy_id}/remove", {"csrf": token})
    assert dropped.status_code == 200 and "No policies" in text(dropped)
    deleted = browser.post("/account/roles/alice.ci/delete", {"csrf": token})
    assert deleted.status_code == 303
    assert "No roles yet" in text(browser.get("/account/roles"))


def test_lasting_role_grants_need_the_password_after_the_recent_sign_in(browser, clock):
    sign_in(browser)
    make_role(browser)
    clock.advance(601)
    page = browser.get("/account/roles/alice.ci")
    token = csrf(page)
    for path, fields in [("policies", {"permission": "data:get@urn:tessera:data:alice.*"}),
                         ("keys", {"description": "late"}),
                         ("trust", {"issuer": "https://token.actions.githubusercontent.com",
                                    "audience": "tessera", "subject": "repo:acme/app:*"})]:
        refused = browser.post(f"/account/roles/alice.ci/{path}", {"csrf": token, **fields})
        assert refused.status_code == 403 and "password" in text(refused), path
        wrong = browser.post(f"/account/roles/alice.ci/{path}",
                             {"csrf": token, "password": "not-it", **fields})
        assert wrong.status_code == 403, path
        ok = browser.post(f"/account/roles/alice.ci/{path}",
                          {"csrf": token, "password": "password4alice", **fields})
        assert ok.status_code in (200, 201), (path, text(ok))


def test_a_role_outside_the_namespace_or_a_bad_policy_is_refused_on_the_page(browser):
    sign_in(browser)
    bad = make_role(browser, "Not A Name!")
    assert bad.status_code in (400, 403, 422) and "error" in text(bad)
    make_role(browser)
    page = browser.get("/account/roles/alice.ci")
    r = browser.post("/account/roles/alice.ci/policies",
                     {"csrf": csrf(page), "permission": "data:get@urn:tessera:data:bob.*"})
    assert r.status_code == 403 and "does not hold" in text(r)


def test_another_users_role_cannot_be_seen_or_touched(browser, client):
    bob = Browser(client)
    sign_in(bob, "bob", "password4bob")
    make_role(bob, "deploy")
    sign_in(browser)
    assert browser.get("/account/roles/bob.deploy").status_code == 404
    token = csrf(browser.get("/account/roles"))
    for path, fields in [("policies", {"permission": "data:get@urn:tessera:data:bob.*"}),
                         ("keys", {}), ("delete", {}),
                         ("trust", {"issuer": "https://token.actions.githubusercontent.com",
                                    "audience": "tessera", "subject": "repo:acme/app:*"})]:
        r = browser.post(f"/account/roles/bob.deploy/{path}",
                         {"csrf": token, "password": "password4alice", **fields})
        assert r.status_code == 404, path
    assert bob.get("/account/roles/bob.deploy").status_code == 200


# -- security log -------------------------------------------------------------------------

def test_security_log_lists_filters_and_pages(browser, ctr):
    from chalicelib.services.security_log import Where

    user_id = ctr.identities.find_user("alice").id
    for n in range(30):
        ctr.security_log.record(user_id, "signin" if n % 2 else "pat_created",
                                Where("203.0.113.9", f"agent-{n}"), {"n": n})
    ctr.security_log.record(ctr.identities.find_user("bob").id, "signin", Where("198.51.100.1"))
    sign_in(browser)
    page = browser.get("/account/security-log")
    html = text(page)
    assert page.status_code == 200 and "Token created" in html and "203.0.113.9" in html
    assert "198.51.100.1" not in html
    older = re.search(r'<a href="([^"]+)" rel="next">', html).group(1).replace("&amp;", "&")
    second = text(browser.get(older))
    assert "agent-0" in second and "agent-29" not in second
    only = text(browser.get("/account/security-log?kind=pat_created"))
    assert "Token created" in only and "(signin)" not in only
    assert browser.get("/account/security-log?kind=nonsense").status_code == 400
    assert browser.get("/account/security-log?cursor=%00").status_code == 400


@pytest.mark.parametrize("path", ["/account", "/account/roles", "/account/tokens"])
def test_a_sign_in_awaiting_its_second_factor_gets_that_step_then_the_page(browser, ctr, clock,
                                                                           path):
    import pyotp

    from chalicelib.services.security_log import Where

    alice = ctr.identities.find_user("alice")
    shown = ctr.factors.begin_totp(alice, "tessera.example")
    ctr.factors.confirm_totp(ctr.identities.find_user("alice"),
                                    pyotp.TOTP(shown.secret).at(clock.now()), Where())
    clock.advance(30)
    signed = sign_in(browser, next_path=path)
    assert signed.status_code == 303
    step = browser.get(path)
    assert "Two-factor authentication" in text(step) and "<nav" not in text(step)
    assert f'name="next" value="{path}"' in text(step)
    done = browser.post("/signin/second-factor", {"csrf": csrf(step), "next": path,
                                                  "code": pyotp.TOTP(shown.secret).at(clock.now())})
    assert done.status_code == 303 and done.headers["Location"] == path
    assert 'aria-current="page"' in text(browser.get(path))
