"""Changing the email address (SPEC §11) from the console's profile page: the
current password (and a code of the second factor) every time, a single-use
24-hour link mailed to the new address, a notice to the old one, one address per
account, and the security log's entry."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from chalicelib.models import user_id_for
from chalicelib.services.second_factors import TOTP_STEP
from chalicelib.services.security_log import Where
from tests.api.helpers import seed
from tests.api.mail_support import link, mail_on, sent
from tests.api.test_account_console import sign_in, text
from tests.api.test_pages_tokens import Browser, csrf

NEW = "alice@wonderland.example"


@pytest.fixture
def browser(client: Any, ctr: Any, settings: Any) -> Browser:
    mail_on(ctr, settings)
    seed(ctr)
    browser = Browser(client)
    sign_in(browser)
    return browser


def ask(browser: Browser, new_email: str = NEW, password: str = "password4alice",
        **extra: str) -> Any:
    page = browser.get("/account")
    return browser.post("/account/email", {"csrf": csrf(page), "new_email": new_email,
                                           "password": password, **extra})


def follow(client: Any, path: str) -> Any:
    """Follow a mailed link in another browser (no sign-in) and confirm."""
    other = Browser(client)
    page = other.get(path)
    if page.status_code != 200:
        return page
    return other.post("/email-change/confirm", {"csrf": csrf(page),
                                                "token": path.split("token=")[1]})


def alice(ctr: Any) -> Any:
    return ctr.users.get(user_id_for("alice"))


def test_a_new_address_is_the_accounts_once_the_mailed_link_is_followed(browser, client, ctr):
    asked = ask(browser, "Alice@Wonderland.example")
    assert asked.status_code == 200 and "We mailed a link" in text(asked)
    assert alice(ctr).email == "alice@example.com"      # not before the link is followed
    to_new, to_old = sent()
    assert to_new["to"] == NEW and to_old["to"] == "alice@example.com"
    path = link(to_new["text"], "tse_")
    assert path.startswith("/email-change/confirm?token=tse_")
    page = Browser(client).get(path)
    assert page.status_code == 200 and NEW in text(page) and 'name="csrf"' in text(page)
    done = follow(client, path)
    assert done.status_code == 200 and "is now the address of alice" in text(done)
    user = alice(ctr)
    assert user.email == NEW and user.email_verified
    assert ctr.users.user_id_by_email(NEW) == user.id
    assert ctr.users.user_id_by_email("alice@example.com") is None
    assert NEW in text(browser.get("/account"))


def test_the_old_address_is_told_of_the_change(browser):
    ask(browser)
    notice = next(m for m in sent() if m["to"] == "alice@example.com")
    assert "being changed" in notice["subject"]
    assert "wonderland.example" in notice["text"] and "tse_" not in notice["text"]


def test_the_change_is_in_the_security_log(browser, client, ctr):
    ask(browser)
    follow(client, link(sent()[0]["text"], "tse_"))
    events, _ = ctr.security_log.page(user_id_for("alice"), kind="email_changed")
    (event,) = events
    assert event.detail == {"from_domain": "example.com", "to_domain": "wonderland.example"}
    assert "Email changed" in text(browser.get("/account/security-log"))


def test_the_change_needs_the_password_even_after_a_fresh_sign_in(browser, ctr):
    refused = ask(browser, password="")
    assert refused.status_code == 403 and "current password" in text(refused)
    wrong = ask(browser, password="not-the-password")
    assert wrong.status_code == 403 and "Password confirmation failed" in text(wrong)
    assert sent() == [] and alice(ctr).email == "alice@example.com"


def test_with_a_second_factor_the_change_needs_a_code_too(browser, ctr, clock):
    user = alice(ctr)
    shown = ctr.factors.begin_totp(user)
    ctr.factors.confirm_totp(alice(ctr), pyotp.TOTP(shown.secret).at(clock.now()), Where())
    clock.advance(TOTP_STEP)
    browser.jar.clear()
    page = browser.get("/account")
    browser.post("/account/signin", {"csrf": csrf(page), "username": "alice",
                                     "password": "password4alice", "next": "/account"})
    step = browser.get("/account")
    browser.post("/signin/second-factor", {
        "csrf": csrf(step), "code": pyotp.TOTP(shown.secret).at(clock.now()), "next": "/account"})
    clock.advance(TOTP_STEP)
    profile = text(browser.get("/account"))
    assert 'name="otp"' in profile
    before = len(sent())                                        # the second factor's notice
    assert ask(browser).status_code == 403                      # no code
    assert ask(browser, otp="000000").status_code == 403        # a wrong code
    assert len(sent()) == before
    done = ask(browser, otp=pyotp.TOTP(shown.secret).at(clock.now()))
    assert done.status_code == 200, text(done)
    assert [m["to"] for m in sent()[before:]] == [NEW, "alice@example.com"]


def test_an_address_another_account_uses_is_refused(browser, ctr):
    taken = ask(browser, "Bob@Example.com")
    assert taken.status_code == 409 and "Another account uses this address" in text(taken)
    assert sent() == []


def test_an_address_taken_before_the_link_is_followed_is_refused_then(browser, client, ctr):
    ask(browser)
    path = link(sent()[0]["text"], "tse_")
    ctr.identities.create_user("carol", "password4carol", email=NEW)
    refused = follow(client, path)
    assert refused.status_code == 409
    assert alice(ctr).email == "alice@example.com"
    assert ctr.users.user_id_by_email(NEW) == user_id_for("carol")


def test_a_link_works_once(browser, client, ctr):
    ask(browser)
    path = link(sent()[0]["text"], "tse_")
    assert follow(client, path).status_code == 200
    again = follow(client, path)
    assert again.status_code == 404 and "not valid" in text(again)


def test_a_link_lasts_24_hours(browser, client, ctr, clock):
    ask(browser)
    path = link(sent()[0]["text"], "tse_")
    clock.advance(24 * 3600)
    assert follow(client, path).status_code == 404
    assert alice(ctr).email == "alice@example.com"


def test_a_link_opened_before_it_expired_is_refused_after(browser, client, ctr, clock):
    ask(browser)
    path = link(sent()[0]["text"], "tse_")
    other = Browser(client)
    page = other.get(path)
    clock.advance(24 * 3600)
    late = other.post("/email-change/confirm", {"csrf": csrf(page),
                                                "token": path.split("token=")[1]})
    assert late.status_code == 404 and alice(ctr).email == "alice@example.com"


@pytest.mark.parametrize("token", ["", "tse_nonsense", "tsw_" + "a" * 30])
def test_a_bad_link_gets_the_not_valid_page(browser, client, token):
    page = Browser(client).get("/email-change/confirm?token=" + token)
    assert page.status_code == 404 and "not valid" in text(page)


def test_a_malformed_address_or_the_same_address_is_a_400(browser):
    assert ask(browser, "not an address").status_code == 400
    assert ask(browser, "ALICE@example.com").status_code == 400
    assert sent() == []


def test_the_change_form_needs_the_csrf_token(browser):
    r = browser.post("/account/email", {"csrf": "x", "new_email": NEW,
                                        "password": "password4alice"})
    assert r.status_code == 403 and sent() == []


def test_a_link_that_cannot_be_mailed_is_a_clear_503_and_changes_nothing(client, ctr):
    seed(ctr)                     # mail not configured
    browser = Browser(client)
    sign_in(browser)
    r = ask(browser)
    assert r.status_code == 503 and "Mail is not configured" in text(r)
    assert alice(ctr).email == "alice@example.com"
