"""The sign-in age and remembered-consent rules of the authorization endpoint, without HTML."""

from __future__ import annotations

import pytest

from chalicelib.models import Client
from chalicelib.services.authorization import AuthorizationRequest


def request(max_age: int | None) -> AuthorizationRequest:
    return AuthorizationRequest(Client("c"), "https://app.example/cb", "", None, (), "", "",
                                frozenset(), max_age, "", {})


@pytest.mark.parametrize(("max_age", "age", "too_old"), [
    (None, 10**6, False), (0, 0, True), (60, 59, False), (60, 60, True), (60, 61, True)])
def test_a_sign_in_is_too_old_once_its_age_reaches_max_age(max_age, age, too_old):
    # OIDC Core §3.1.2.1; max_age=0 asks even in the second of the sign-in.
    assert request(max_age).sign_in_too_old(auth_time=1000, now=1000 + age) is too_old


@pytest.mark.parametrize(("client", "redirect_uri", "remembers"), [
    (Client("web", secret_hash="sha256$s$h"), "http://127.0.0.1:5000/cb", True),
    (Client("native"), "http://127.0.0.1:5000/cb", False),
    (Client("native"), "com.example.app:/cb", False),
    (Client("spa"), "https://spa.example/cb", True),
    (Client("native", remember_consent=True), "http://127.0.0.1:5000/cb", True),
    (Client("web", secret_hash="sha256$s$h", remember_consent=False), "https://a.example/", False),
])
def test_remembered_consent_by_client_kind_redirect_and_setting(client, redirect_uri, remembers):
    # RFC 6749 §10.2: a public client is asked again unless its redirect URI is https.
    assert client.remembers_consent(redirect_uri) is remembers


# -- Authorization.decide: the next step as a typed outcome, no page, no HTML ------------

from chalicelib.clock import FakeClock  # noqa: E402
from chalicelib.errors import AccessDenied, ConsentRequired, LoginRequired  # noqa: E402
from chalicelib.models import Session, User  # noqa: E402
from chalicelib.services.authorization import Authorization, Next  # noqa: E402
from chalicelib.storage.consents import Consent  # noqa: E402


class Consents:
    def __init__(self):
        self.stored = {}

    def get(self, user_id, client_id):
        return self.stored.get((user_id, client_id))

    def grant(self, user_id, client_id, scopes, now):
        self.stored[(user_id, client_id)] = Consent(user_id, client_id, tuple(scopes), now, now)
        return self.stored[(user_id, client_id)]


class Codes:
    def __init__(self):
        self.issued = []

    def insert(self, code):
        self.issued.append(code)


SPA = Client("spa")
ALICE = User("u1", "alice")


def service():
    return Authorization(Codes(), Consents(), FakeClock(10_000), clients=lambda _: SPA,
                         sessions=lambda: None)


def ask(prompt=(), max_age=None, scope=("openid",)):
    return AuthorizationRequest(SPA, "https://spa.example/cb", "https://spa.example/cb", "st",
                                scope, "", "c" * 43, frozenset(prompt), max_age, "", {})


def session(auth_time=9_000):
    return Session("s1", "u1", "web", "", 0, 20_000, 20_000, 9_000, kind="web",
                   auth_time=auth_time)


@pytest.mark.parametrize(("prompt", "expected"), [((), None), (("none",), LoginRequired)])
def test_nobody_signed_in_is_asked_to_sign_in_unless_prompt_none(prompt, expected):
    outcome = service().decide(ask(prompt), "", None, None, "https://tessera.test")
    if expected is None:
        assert outcome.next is Next.SIGN_IN
    else:
        assert outcome.next is Next.ERROR and isinstance(outcome.error, expected)


def test_prompt_login_and_max_age_ask_again_but_not_after_the_sign_in_they_asked_for():
    auth = service()
    for request in (ask(("login",)), ask(max_age=60)):
        assert auth.decide(request, "", ALICE, session(), "i").next is Next.SIGN_IN
        assert auth.decide(request, "signin", ALICE, session(), "i").next is Next.CONSENT


def test_consent_then_a_code_and_a_remembered_consent_skips_the_page():
    auth = service()
    assert auth.decide(ask(), "", ALICE, session(), "i").granted == ("openid",)
    approved = auth.decide(ask(), "approve", ALICE, session(), "https://tessera.test")
    assert approved.next is Next.REDIRECT and approved.location.startswith("https://spa.example/cb?code=")
    assert "state=st" in approved.location and len(auth.codes.issued) == 1
    assert auth.decide(ask(), "", ALICE, session(), "i").next is Next.REDIRECT
    assert auth.decide(ask(("consent",)), "", ALICE, session(), "i").next is Next.CONSENT
    refused = auth.decide(ask(("none", "consent")), "", ALICE, session(), "i")
    assert isinstance(refused.error, ConsentRequired)


def test_deny_and_no_held_scope_are_access_denied_errors():
    auth = service()
    assert isinstance(auth.decide(ask(), "deny", None, None, "i").error, AccessDenied)
    limited = User("u1", "alice", scopes=("openid",))
    outcome = auth.decide(ask(scope=("api:write",)), "", limited, session(), "i")
    assert outcome.next is Next.ERROR and isinstance(outcome.error, AccessDenied)
