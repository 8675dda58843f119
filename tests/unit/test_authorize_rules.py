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
