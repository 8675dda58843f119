"""Notices (SPEC §11): the owner is mailed once, after the change, of a sign-in
from a device not seen before, a PAT or a role key created, a second factor added
or removed. The token notices can be turned off on the profile page; the security
notices (sign-ins, second factors) cannot."""

from __future__ import annotations

from typing import Any

import pyotp
import pytest

from chalicelib.errors import BadRequest, Forbidden
from chalicelib.models import user_id_for
from chalicelib.services.notices import SEEN_DEVICES, device_fingerprint, user_agent_family
from chalicelib.services.second_factors import TOTP_STEP
from chalicelib.services.security_log import Where
from tests.api.helpers import CLI, form, seed, tokens
from tests.api.mail_support import mail_on, sent
from tests.api.test_account_console import sign_in, text
from tests.api.test_pages_tokens import Browser, csrf
from tests.api.test_pats import NEXT_MONTH, new_pat

FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
FIREFOX_NEXT = "Mozilla/5.0 (X11; Linux x86_64; rv:129.0) Gecko/20100101 Firefox/129.0"
CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/537.36 (KHTML, like "
              "Gecko) Chrome/126.0.0.0 Safari/537.36")
ALICE = user_id_for("alice")
SOURCE = "127.0.0.1"      # chalice.test.Client's source address


@pytest.fixture
def mail(client: Any, ctr: Any, settings: Any) -> Any:
    mail_on(ctr, settings)
    seed(ctr)
    return client


def password_signin(client: Any, user_agent: str, password: str = "password4alice") -> Any:
    return form(client, "/oauth/token", headers={"User-Agent": user_agent},
                grant_type="password", client_id=CLI, username="alice", password=password)


def to_alice(subject_part: str) -> list[dict[str, str]]:
    return [m for m in sent() if m["to"] == "alice@example.com" and subject_part in m["subject"]]


def alice(ctr: Any) -> Any:
    return ctr.users.get(ALICE)


def turn_token_notices_off(client: Any) -> Any:
    browser = Browser(client)
    sign_in(browser)
    page = browser.get("/account")
    return browser.post("/account/notices", {"csrf": csrf(page)})


# -- a sign-in from a device not seen before ------------------------------------------------

def test_a_sign_in_from_an_unseen_device_is_mailed_once(mail, ctr):
    assert password_signin(mail, FIREFOX).status_code == 200
    assert to_alice("new sign-in") == []          # the first device is only remembered
    assert password_signin(mail, FIREFOX).status_code == 200
    assert password_signin(mail, FIREFOX_NEXT).status_code == 200   # a browser update
    assert to_alice("new sign-in") == []
    assert password_signin(mail, CHROME_MAC).status_code == 200
    (notice,) = to_alice("new sign-in")
    assert "Chrome on macOS" in notice["text"] and "/account/sessions" in notice["text"]
    assert password_signin(mail, CHROME_MAC).status_code == 200
    assert len(to_alice("new sign-in")) == 1
    assert alice(ctr).seen_devices == (device_fingerprint(SOURCE, FIREFOX),
                                       device_fingerprint(SOURCE, CHROME_MAC))


def test_a_refused_sign_in_mails_nothing_and_remembers_nothing(mail, ctr):
    password_signin(mail, FIREFOX)
    assert password_signin(mail, CHROME_MAC, password="wrong-password").status_code != 200
    assert to_alice("new sign-in") == [] and len(alice(ctr).seen_devices) == 1


def test_a_console_sign_in_from_an_unseen_device_is_mailed(mail, ctr):
    password_signin(mail, FIREFOX)
    sign_in(Browser(mail))        # the test client's own user agent: another device
    assert len(to_alice("new sign-in")) == 1


def test_the_seen_devices_are_bounded(mail, ctr):
    for n in range(SEEN_DEVICES + 3):
        assert password_signin(mail, f"tool{n}/1.0").status_code == 200
    seen = alice(ctr).seen_devices
    assert seen == tuple(device_fingerprint(SOURCE, f"tool{n}/1.0")
                         for n in range(3, SEEN_DEVICES + 3))     # the last ones
    assert len(to_alice("new sign-in")) == SEEN_DEVICES + 2


def test_the_sign_in_notice_cannot_be_turned_off(mail, ctr):
    password_signin(mail, FIREFOX)
    assert turn_token_notices_off(mail).status_code == 200   # every box unticked
    before = len(to_alice("new sign-in"))
    password_signin(mail, CHROME_MAC)
    assert len(to_alice("new sign-in")) == before + 1
    with pytest.raises(BadRequest):
        ctr.notices.set_off(alice(ctr), ["new_signin"])


def test_user_agent_families_ignore_versions():
    assert user_agent_family(FIREFOX) == user_agent_family(FIREFOX_NEXT) == "Firefox on Linux"
    assert user_agent_family(CHROME_MAC) == "Chrome on macOS"
    assert user_agent_family("curl/8.5.0") == "curl"
    assert user_agent_family("") == "unknown"


# -- PATs and role keys ------------------------------------------------------------------

def test_a_new_pat_is_mailed_once_after_it_exists(mail, ctr):
    token = tokens(mail)["access_token"]
    made = new_pat(mail, token, description="deploy bot")
    (notice,) = to_alice("personal access token")
    assert "deploy bot" in notice["text"] and made["id"]
    assert ctr.pats.get(alice(ctr), made["id"]).description == "deploy bot"


def test_a_refused_pat_is_not_mailed(mail):
    token = tokens(mail)["access_token"]
    from tests.api.test_pats import generate

    assert generate(mail, token, expires_at="1999-01-01").status_code in (400, 422)
    assert to_alice("personal access token") == []


def test_a_new_role_key_is_mailed_once(mail, ctr):
    ctr.roles.create(alice(ctr), "alice.ci")
    assert to_alice("role key") == []
    issued = ctr.roles.create_key(alice(ctr), "alice.ci")
    (notice,) = to_alice("role key")
    assert issued.key.id in notice["text"] and "/account/roles" in notice["text"]


def test_token_notices_can_be_turned_off_and_on_in_the_console(mail, ctr):
    off = turn_token_notices_off(mail)
    assert off.status_code == 200 and "saved" in text(off)
    assert 'name="token_created" value="yes" checked' not in text(off)
    assert alice(ctr).notices_off == {"token_created"}
    token = tokens(mail)["access_token"]
    new_pat(mail, token, description="quiet")
    ctr.roles.create(alice(ctr), "alice.ci")
    ctr.roles.create_key(alice(ctr), "alice.ci")
    assert to_alice("personal access token") == [] and to_alice("role key") == []
    browser = Browser(mail)
    sign_in(browser)
    page = browser.get("/account")
    assert 'name="token_created" value="yes">' in text(page)
    on = browser.post("/account/notices", {"csrf": csrf(page), "token_created": "yes"})
    assert 'name="token_created" value="yes" checked' in text(on)
    assert alice(ctr).notices_off == frozenset()
    new_pat(mail, token, description="loud", expires_at=NEXT_MONTH)
    assert len(to_alice("personal access token")) == 1


def test_the_notices_form_needs_the_csrf_token(mail, ctr):
    browser = Browser(mail)
    sign_in(browser)
    assert browser.post("/account/notices", {"csrf": "x"}).status_code == 403
    assert alice(ctr).notices_off == frozenset()


# -- second factors ----------------------------------------------------------------------

def enrol_totp(ctr: Any, clock: Any) -> str:
    shown = ctr.factors.begin_totp(alice(ctr))
    ctr.factors.confirm_totp(alice(ctr), pyotp.TOTP(shown.secret).at(clock.now()), Where())
    clock.advance(TOTP_STEP)
    return shown.secret


def test_a_second_factor_added_and_removed_is_mailed_each_time(mail, ctr, clock):
    enrol_totp(ctr, clock)
    (added,) = to_alice("second factor was added")
    assert "authenticator app" in added["text"]
    ctr.factors.remove_totp(alice(ctr), Where())
    (removed,) = to_alice("second factor was removed")
    assert "/account/security" in removed["text"]


def test_a_refused_second_factor_is_not_mailed(mail, ctr):
    ctr.factors.begin_totp(alice(ctr))
    with pytest.raises(Forbidden):
        ctr.factors.confirm_totp(alice(ctr), "000000", Where())
    assert to_alice("second factor") == []


def test_second_factor_notices_cannot_be_turned_off(mail, ctr, clock):
    turn_token_notices_off(mail)
    enrol_totp(ctr, clock)
    assert len(to_alice("second factor was added")) == 1
    with pytest.raises(BadRequest):
        ctr.notices.set_off(alice(ctr), ["second_factor"])


def test_a_failed_notice_never_fails_the_change(client, ctr, settings):
    seed(ctr)         # mail not configured: every notice fails to send
    token = tokens(client)["access_token"]
    assert new_pat(client, token, description="still made")["id"]
    assert password_signin(client, FIREFOX).status_code == 200
    assert password_signin(client, CHROME_MAC).status_code == 200
