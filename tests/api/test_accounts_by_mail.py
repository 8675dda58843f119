"""Accounts by mail (SPEC §11) over the Chalice test client, with moto's SES:
invitations (API, admin command, the link's page) and password reset (the same
answer and the same work for any address, a single-use 30-minute link, the second
factor, every session ended, PATs kept)."""

from __future__ import annotations

import json
import re
from typing import Any

import pyotp
import pytest

from bench.dynamo_meter import DynamoMeter
from chalicelib.models import user_id_for
from chalicelib.services.second_factors import TOTP_STEP
from tests.api.helpers import CLI, bearer, form, login, refresh, seed, tokens
from tests.api.mail_support import link, mail_on, sent
from tests.api.test_device_page import Browser, text

JSON = {"Content-Type": "application/json"}


@pytest.fixture
def mail(client: Any, ctr: Any, settings: Any) -> Any:
    """Mail on: a sender verified in moto's SES; the seeded users and clients."""
    mail_on(ctr, settings)
    seed(ctr)
    ctr.identities.create_client("inviter-cli", public=True, grant_types=["password"],
                                 scopes=["openid", "users:invite", "tokens:manage"])
    return client


def invite(client: Any, address: str, **extra: Any) -> Any:
    token = tokens(client, client_id="inviter-cli", scope="openid users:invite")["access_token"]
    return client.http.post("/v1/invitations", headers={**bearer(token), **JSON},
                            body=json.dumps({"email": address, **extra}).encode())


# -- invitations -----------------------------------------------------------------------

def test_an_invited_person_creates_an_account_from_the_mailed_link(mail, ctr):
    made = invite(mail, "Carol@Example.org")
    assert made.status_code == 201, made.body
    view = json.loads(made.body)
    assert set(view) == {"id", "email", "expires_at"} and view["email"] == "carol@example.org"
    (letter,) = sent()
    assert letter["to"] == "carol@example.org" and "invited you" in letter["text"]
    path = link(letter["text"], "tsi_")
    browser = Browser(mail)
    page = browser.get(path)
    assert page.status_code == 200 and "carol@example.org" in text(page)
    token = path.split("token=")[1]
    weak = browser.post("/invitation", token=token, username="carol", password="password1",
                        password_again="password1")
    assert weak.status_code == 400 and "data breaches" in text(weak)
    done = browser.post("/invitation", token=token, username="carol",
                        password="a sound passphrase 7", password_again="a sound passphrase 7")
    assert done.status_code == 303 and done.headers["Location"].endswith("/account/security?welcome=1")
    carol = ctr.users.get(user_id_for("carol"))
    assert carol.email == "carol@example.org" and carol.email_verified
    assert login(mail, username="carol", password="a sound passphrase 7").status_code == 200
    again = Browser(mail).get(path)
    assert again.status_code == 404


def test_an_invitation_gives_at_most_the_inviters_scopes_and_needs_the_scope(mail, ctr):
    ctr.identities.create_user("ivy", "a sound passphrase 7",
                               scopes=["openid", "users:invite"])
    token = tokens(mail, client_id="inviter-cli", username="ivy", password="a sound passphrase 7",
                   scope="openid users:invite")["access_token"]
    beyond = mail.http.post("/v1/invitations", headers={**bearer(token), **JSON},
                            body=json.dumps({"email": "dan@example.org",
                                             "scopes": ["api:write"]}).encode())
    assert beyond.status_code == 403
    plain = tokens(mail, scope="openid")["access_token"]
    refused = mail.http.post("/v1/invitations", headers={**bearer(plain), **JSON},
                             body=json.dumps({"email": "dan@example.org"}).encode())
    assert refused.status_code == 403 and not sent()


def test_an_address_in_use_is_not_invited_again(mail):
    made = invite(mail, "alice@example.com")
    assert made.status_code == 409


def test_a_taken_username_keeps_the_invitation_usable(mail, ctr):
    invite(mail, "erin@example.org")
    path = link(sent()[0]["text"], "tsi_")
    browser = Browser(mail)
    browser.get(path)
    token = path.split("token=")[1]
    taken = browser.post("/invitation", token=token, username="alice",
                         password="a sound passphrase 7", password_again="a sound passphrase 7")
    assert taken.status_code == 409 and "taken" in text(taken)
    assert browser.post("/invitation", token=token, username="erin",
                        password="a sound passphrase 7",
                        password_again="a sound passphrase 7").status_code == 303


def test_the_admin_command_invites(mail, ctr, capsys):
    from chalicelib import container as container_module
    from tessera_admin.cli import main

    container_module.use(ctr)
    assert main(["user", "invite", "fay@example.org", "--issuer", "https://tessera.test"]) == 0
    assert json.loads(capsys.readouterr().out)["email"] == "fay@example.org"
    assert link(sent()[0]["text"], "tsi_").startswith("/invitation?token=tsi_")


# -- password reset ------------------------------------------------------------------------

def ask_reset(client: Any, address: str) -> Any:
    return client.http.post("/v1/password-reset", headers=JSON,
                            body=json.dumps({"email": address}).encode())


def test_the_answer_and_the_work_are_the_same_for_known_and_unknown_addresses(mail, ctr):
    meter = DynamoMeter(ctr.dynamodb())
    try:
        meter.take()
        known = ask_reset(mail, "alice@example.com")
        known_work = meter.take().calls
        unknown = ask_reset(mail, "nobody@example.com")
        unknown_work = meter.take().calls
    finally:
        meter.close()
    assert (known.status_code, known.body) == (unknown.status_code, unknown.body)
    assert known.status_code == 202
    assert known_work == unknown_work          # the same DynamoDB calls, one of each mail
    to = [m["to"] for m in sent()]
    assert to == ["alice@example.com", "nobody@example.com"]
    assert "tsw_" in sent()[0]["text"] and "tsw_" not in sent()[1]["text"]


def test_the_reset_page_answers_the_same_page_for_any_address(mail):
    pages = []
    for address in ("alice@example.com", "nobody@example.com"):
        browser = Browser(mail)
        browser.get("/password-reset")
        pages.append(browser.post("/password-reset", email=address))
    strip = [re.sub(r'value="[0-9a-f]{64}"|nonce="[^"]+"', "", text(p)) for p in pages]
    assert pages[0].status_code == pages[1].status_code == 202 and strip[0] == strip[1]


def reset_link(client: Any) -> str:
    assert ask_reset(client, "alice@example.com").status_code == 202
    return link(sent()[-1]["text"], "tsw_")


def test_a_reset_ends_every_session_and_keeps_the_pats(mail, ctr, clock):
    grant = tokens(mail, scope="openid tokens:manage")
    pat = json.loads(mail.http.post(
        "/v1/tokens", headers={**bearer(grant["access_token"]), **JSON},
        body=json.dumps({"description": "ci", "scopes": ["openid"]}).encode()).body)["token"]
    path = reset_link(mail)
    browser = Browser(mail)
    page = browser.get(path)
    assert page.status_code == 200 and "alice" in text(page)
    token = path.split("token=")[1]
    done = browser.post("/password-reset/confirm", token=token, password="a new sound passphrase",
                        password_again="a new sound passphrase")
    assert done.status_code == 200 and "every session" in text(done)
    assert json.loads(refresh(mail, grant["refresh_token"]).body)["error"] == "invalid_grant"
    assert login(mail).status_code == 400
    assert login(mail, password="a new sound passphrase").status_code == 200
    assert mail.http.get("/v1/me", headers=bearer(pat)).status_code == 200
    events, _ = ctr.security_log.page(user_id_for("alice"), kind="password_reset")
    assert len(events) == 1
    assert "was reset" in sent()[-1]["subject"] and "still work" in sent()[-1]["text"]
    assert Browser(mail).get(path).status_code == 404      # used once


def test_a_reset_link_lasts_thirty_minutes(mail, clock):
    path = reset_link(mail)
    clock.advance(30 * 60)
    assert Browser(mail).get(path).status_code == 404


def test_a_reset_asks_for_the_second_factor(mail, ctr, clock):
    user = ctr.users.get(user_id_for("alice"))
    shown = ctr.factors.begin_totp(user)
    from chalicelib.services.security_log import Where

    ctr.factors.confirm_totp(ctr.users.get(user.id), pyotp.TOTP(shown.secret).at(clock.now()),
                             Where())
    clock.advance(TOTP_STEP)
    path = reset_link(mail)
    token = path.split("token=")[1]
    browser = Browser(mail)
    assert "Authentication code" in text(browser.get(path))
    fields = {"token": token, "password": "a new sound passphrase",
              "password_again": "a new sound passphrase"}
    assert browser.post("/password-reset/confirm", **fields).status_code == 403
    assert browser.post("/password-reset/confirm", code="000000", **fields).status_code == 403
    done = browser.post("/password-reset/confirm", code=pyotp.TOTP(shown.secret).at(clock.now()),
                        **fields)
    assert done.status_code == 200, text(done)


def test_resets_are_throttled_per_address_yet_answered_the_same(mail):
    for _ in range(8):
        assert ask_reset(mail, "alice@example.com").status_code == 202
    assert len(sent()) == 4      # the fifth request in the hour locks the address: no more mail


def test_the_reset_api_refuses_a_body_without_an_address(mail):
    r = mail.http.post("/v1/password-reset", headers=JSON, body=b'{"email": "not an address"}')
    assert r.status_code == 422


def test_sign_in_forms_are_unchanged_for_the_cli_client(mail):
    # The password grant itself is untouched by accounts by mail.
    assert form(mail, "/oauth/token", grant_type="password", client_id=CLI, username="alice",
                password="password4alice").status_code == 200
