"""Delegation by token exchange (SPEC §6, RFC 8693): a confidential app registered
with ``delegate`` exchanges a person's access token for one that acts for them."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import jwt
import pytest

from tests.api.helpers import CLI, basic, bearer, body, form, seed, tokens
from tests.api.test_token_endpoint_errors import assert_oauth_error
from tests.conftest import ISSUER

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN = "urn:ietf:params:oauth:token-type:access_token"
APP, APP_SECRET = "console", "console-secret-value"
NO_DELEGATE, NO_DELEGATE_SECRET = "no-delegate", "no-delegate-secret-value"
PUBLIC_APP = "public-app"
ORDERS = "https://orders.example/api"
APP_SCOPES = ["openid", "profile", "email", "api:read", "api:write"]


@pytest.fixture(autouse=True)
def _seeded(ctr: Any) -> None:
    seed(ctr)
    ids = ctr.identities
    ids.create_client(APP, secret=APP_SECRET, grant_types=[EXCHANGE, "authorization_code"],
                      scopes=APP_SCOPES, delegate=True,
                      redirect_uris=["http://127.0.0.1:9000/callback"])
    ids.create_client(NO_DELEGATE, secret=NO_DELEGATE_SECRET, grant_types=[EXCHANGE],
                      scopes=APP_SCOPES)
    # registration refuses delegate on a public client; the grant still answers it
    ids.create_client(PUBLIC_APP, public=True, grant_types=[EXCHANGE], scopes=APP_SCOPES)
    ids.create_client("orders-api", secret="orders-api-secret-value", resources=[ORDERS])


def alice_id(ctr: Any) -> str:
    return str(ctr.identities.find_user("alice").id)


def consent(ctr: Any, *scopes: str, client_id: str = APP) -> None:
    ctr.consents_repo.grant(alice_id(ctr), client_id, scopes, ctr.clock.now())


def person_token(client: Any, scope: str = "openid profile api:read api:write tokens:read",
                 **extra: str) -> str:
    return str(tokens(client, scope=scope, **extra)["access_token"])


def delegate(client: Any, subject_token: str, creds: tuple[str, str] = (APP, APP_SECRET),
             **extra: str) -> Any:
    return form(client, "/oauth/token", basic(*creds), grant_type=EXCHANGE,
                subject_token=subject_token, subject_token_type=ACCESS_TOKEN, **extra)


def claims_of(token: str, audience: str = ISSUER) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}, audience=audience))


def test_a_delegated_token_names_the_person_and_the_app_with_the_common_scope(client, ctr,
                                                                             audit_events):
    consent(ctr, "openid", "profile", "api:read", "email")
    subject = person_token(client)
    response = delegate(client, subject)
    assert response.status_code == 200, response.body
    assert response.headers["Cache-Control"] == "no-store"
    answer = body(response)
    # RFC 8693 §2.2.1; no refresh token
    assert answer["issued_token_type"] == ACCESS_TOKEN
    assert answer["token_type"] == "Bearer"
    assert "refresh_token" not in answer
    # app {openid profile email api:read api:write} ∩ token {openid profile api:read
    # api:write tokens:read} ∩ consent {openid profile api:read email}
    assert answer["scope"] == "openid profile api:read"
    claims = claims_of(answer["access_token"])
    original = claims_of(subject)
    assert claims["sub"] == alice_id(ctr) == original["sub"]
    assert claims["act"] == {"sub": APP}
    assert claims["client_id"] == APP
    assert claims["sid"] == original["sid"]
    assert claims["exp"] <= original["exp"]
    assert jwt.get_unverified_header(answer["access_token"])["typ"] == "at+jwt"
    issued = [e for e in audit_events() if e["event"] == "delegation_exchange"]
    assert issued[-1]["outcome"] == "issued" and issued[-1]["client_id"] == APP
    # Tessera's own API serves it as the person's token
    me = client.http.get("/v1/me", headers=bearer(answer["access_token"]))
    assert me.status_code == 200 and body(me)["id"] == alice_id(ctr)


def test_introspection_of_a_delegated_token_shows_its_actor(client, ctr):
    from tests.api.helpers import RS, RS_SECRET

    consent(ctr, "openid", "api:read")
    token = body(delegate(client, person_token(client)))["access_token"]
    answer = body(form(client, "/oauth/introspect", basic(RS, RS_SECRET), token=token))
    assert answer["active"] is True
    assert answer["act"] == {"sub": APP}
    assert answer["client_id"] == APP and answer["scope"] == "api:read openid"


def test_a_delegated_token_lives_no_longer_than_the_presented_one(client, ctr, clock):
    consent(ctr, "api:read")
    subject = person_token(client)
    clock.advance(200)              # 100 s of the presented token's 300 s left
    answer = body(delegate(client, subject))
    assert answer["expires_in"] == 100
    claims = claims_of(answer["access_token"])
    assert claims["exp"] == claims_of(subject)["exp"]


def test_a_requested_scope_within_the_delegation_is_granted(client, ctr):
    consent(ctr, "openid", "api:read", "api:write")
    answer = body(delegate(client, person_token(client), scope="api:write"))
    assert answer["scope"] == "api:write"


def test_a_requested_scope_beyond_the_delegation_is_invalid_scope(client, ctr):
    consent(ctr, "openid", "api:read")
    # api:write: the app and the token have it, the consent does not
    assert_oauth_error(delegate(client, person_token(client), scope="api:read api:write"),
                       400, "invalid_scope")
    # tokens:read: the token has it, the app does not
    assert_oauth_error(delegate(client, person_token(client), scope="tokens:read"),
                       400, "invalid_scope")


def test_without_a_consent_the_exchange_is_invalid_grant(client, ctr, audit_events):
    parsed = assert_oauth_error(delegate(client, person_token(client)), 400, "invalid_grant")
    assert "consent" in parsed["error_description"]
    refused = [e for e in audit_events() if e["event"] == "delegation_exchange"]
    assert refused[-1]["outcome"] == "refused" and refused[-1]["reason"] == "no consent"


def test_a_withdrawn_consent_ends_the_delegated_token_and_refuses_new_exchanges(client, ctr):
    consent(ctr, "openid", "api:read")
    subject = person_token(client)           # the CLI's session, which the withdrawal keeps
    delegated = body(delegate(client, subject))["access_token"]
    assert client.http.get("/v1/me", headers=bearer(delegated)).status_code == 200
    manager = person_token(client, scope="sessions:manage")
    withdrawn = client.http.delete(f"/v1/consents/{APP}", headers=bearer(manager))
    assert withdrawn.status_code == 204, withdrawn.body
    # the person's own token still works: its session is the CLI's
    assert client.http.get("/v1/me", headers=bearer(subject)).status_code == 200
    # the delegated one does not, on Tessera's endpoints
    assert client.http.get("/v1/me", headers=bearer(delegated)).status_code == 401
    assert client.http.get("/oauth/userinfo", headers=bearer(delegated)).status_code == 401
    from tests.api.helpers import RS, RS_SECRET
    assert body(form(client, "/oauth/introspect", basic(RS, RS_SECRET),
                     token=delegated)) == {"active": False}
    # and no new one is issued
    assert_oauth_error(delegate(client, subject), 400, "invalid_grant")


def test_ending_the_persons_session_ends_the_delegated_token(client, ctr):
    consent(ctr, "openid", "api:read")
    subject = person_token(client)
    delegated = body(delegate(client, subject))["access_token"]
    assert client.http.post("/v1/logout", headers=bearer(subject)).status_code == 204
    assert client.http.get("/v1/me", headers=bearer(delegated)).status_code == 401
    assert_oauth_error(delegate(client, subject), 400, "invalid_grant")


def test_a_delegated_token_cannot_end_the_persons_session(client, ctr):
    consent(ctr, "openid", "api:read")
    subject = person_token(client)
    delegated = body(delegate(client, subject))["access_token"]
    assert client.http.post("/v1/logout", headers=bearer(delegated)).status_code == 400
    assert client.http.get("/v1/me", headers=bearer(subject)).status_code == 200


def test_a_client_not_registered_to_delegate_is_unauthorized_client(client, ctr):
    consent(ctr, "api:read", client_id=NO_DELEGATE)
    assert_oauth_error(delegate(client, person_token(client), creds=(NO_DELEGATE, NO_DELEGATE_SECRET)),
                       400, "unauthorized_client")


def test_a_public_client_cannot_delegate(client, ctr):
    consent(ctr, "api:read", client_id=PUBLIC_APP)
    response = form(client, "/oauth/token", grant_type=EXCHANGE, client_id=PUBLIC_APP,
                    subject_token=person_token(client), subject_token_type=ACCESS_TOKEN)
    assert_oauth_error(response, 401, "invalid_client")


def test_an_anonymous_delegation_is_invalid_client(client, ctr):
    consent(ctr, "api:read")
    response = form(client, "/oauth/token", grant_type=EXCHANGE,
                    subject_token=person_token(client), subject_token_type=ACCESS_TOKEN)
    assert_oauth_error(response, 401, "invalid_client")
    assert "Basic" in response.headers["WWW-Authenticate"]


def test_a_wrong_client_secret_is_invalid_client(client, ctr):
    consent(ctr, "api:read")
    assert_oauth_error(delegate(client, person_token(client), creds=(APP, "wrong-secret-value")),
                       401, "invalid_client")


def test_a_client_token_as_subject_is_invalid_grant(client, ctr):
    from tests.api.helpers import RS, RS_SECRET

    service = body(form(client, "/oauth/token", basic(RS, RS_SECRET),
                        grant_type="client_credentials"))["access_token"]
    assert_oauth_error(delegate(client, service), 400, "invalid_grant")


def test_a_role_token_as_subject_is_invalid_grant(client, ctr):
    role_token = ctr.issuer.role_response(
        issuer=ISSUER, role_name="alice.ci", owner_id=alice_id(ctr), client_id=CLI,
        permissions=("data:get@urn:tessera:data:alice.x",), scope="data:get")["access_token"]
    consent(ctr, "api:read")
    assert_oauth_error(delegate(client, role_token), 400, "invalid_grant")


def test_an_expired_subject_token_is_invalid_grant(client, ctr, clock):
    consent(ctr, "api:read")
    subject = person_token(client)
    clock.advance(301)
    assert_oauth_error(delegate(client, subject), 400, "invalid_grant")


def test_an_id_token_presented_as_an_access_token_is_invalid_grant(client, ctr):
    consent(ctr, "openid", "api:read")
    id_token = tokens(client, scope="openid api:read")["id_token"]
    assert_oauth_error(delegate(client, id_token), 400, "invalid_grant")


def test_garbage_as_subject_token_is_invalid_grant(client, ctr):
    consent(ctr, "api:read")
    assert_oauth_error(delegate(client, "not-a-token"), 400, "invalid_grant")


@pytest.mark.parametrize("token_type", ["urn:ietf:params:oauth:token-type:refresh_token",
                                        "urn:example:unknown"])
def test_an_unsupported_subject_token_type_is_invalid_request(client, ctr, token_type):
    consent(ctr, "api:read")
    response = form(client, "/oauth/token", basic(APP, APP_SECRET), grant_type=EXCHANGE,
                    subject_token=person_token(client), subject_token_type=token_type)
    parsed = assert_oauth_error(response, 400, "invalid_request")
    assert "subject_token_type" in parsed["error_description"]


def test_an_actor_token_is_invalid_request(client, ctr):
    consent(ctr, "api:read")
    assert_oauth_error(delegate(client, person_token(client), actor_token="x",
                                actor_token_type=ACCESS_TOKEN), 400, "invalid_request")


def test_a_refresh_token_cannot_be_requested(client, ctr):
    consent(ctr, "api:read")
    assert_oauth_error(delegate(client, person_token(client),
                                requested_token_type="urn:ietf:params:oauth:token-type:refresh_token"),
                       400, "invalid_request")


def test_audience_or_resource_names_a_registered_resource(client, ctr):
    consent(ctr, "api:read")
    by_audience = body(delegate(client, person_token(client), audience=ORDERS))
    assert claims_of(by_audience["access_token"], ORDERS)["aud"] == ORDERS
    by_resource = body(delegate(client, person_token(client), resource=ORDERS))
    assert claims_of(by_resource["access_token"], ORDERS)["aud"] == ORDERS
    assert_oauth_error(delegate(client, person_token(client), audience="https://unknown.example/"),
                       400, "invalid_target")


def test_a_delegated_token_exchanged_again_nests_the_earlier_actor(client, ctr):
    ctr.identities.create_client("reports", secret="reports-secret-value", grant_types=[EXCHANGE],
                                 scopes=["api:read"], delegate=True)
    consent(ctr, "api:read")
    consent(ctr, "api:read", client_id="reports")
    first = body(delegate(client, person_token(client)))["access_token"]
    second = body(delegate(client, first, creds=("reports", "reports-secret-value")))
    claims = claims_of(second["access_token"])
    assert claims["act"] == {"sub": "reports", "act": {"sub": APP}}
    assert claims["client_id"] == "reports" and claims["scope"] == "api:read"


def test_the_app_cannot_revoke_the_persons_session_through_a_delegated_token(client, ctr):
    consent(ctr, "api:read")
    subject = person_token(client)
    delegated = body(delegate(client, subject))["access_token"]
    response = form(client, "/oauth/revoke", basic(APP, APP_SECRET), token=delegated)
    assert_oauth_error(response, 400, "unsupported_token_type")
    assert client.http.get("/v1/me", headers=bearer(subject)).status_code == 200


# RFC 8693 §2.1 leaves to the server which subject tokens it accepts: only one whose
# audience names Tessera's own API or the exchanging client (a resource it answers
# for), so an exchange never turns a token meant for another resource server into
# one for Tessera's API.

REPORTS, REPORTS_SECRET, REPORTS_API = "reports", "reports-secret-value", "https://reports.example/api"


def reports_client(ctr: Any) -> None:
    """A delegating client that is also a resource server, answering for REPORTS_API."""
    ctr.identities.create_client(REPORTS, secret=REPORTS_SECRET, grant_types=[EXCHANGE],
                                 scopes=["api:read"], delegate=True, resources=[REPORTS_API])
    consent(ctr, "api:read", client_id=REPORTS)


def test_a_token_for_another_resource_server_is_not_accepted_as_subject(client, ctr, audit_events):
    consent(ctr, "api:read")
    for_orders = person_token(client, scope="openid api:read", resource=ORDERS)
    assert claims_of(for_orders, ORDERS)["aud"] == ORDERS
    parsed = assert_oauth_error(delegate(client, for_orders), 400, "invalid_grant")
    assert "audience" in parsed["error_description"]
    # Naming a target does not help: the subject token itself is refused.
    assert_oauth_error(delegate(client, for_orders, audience=ORDERS), 400, "invalid_grant")
    refusals = [e for e in audit_events() if e.get("event") == "delegation_exchange"]
    assert refusals[-1]["reason"] == "subject token for another audience"


def test_a_token_for_another_delegating_client_is_not_accepted_as_subject(client, ctr):
    reports_client(ctr)
    consent(ctr, "api:read")
    for_reports = person_token(client, scope="openid api:read", resource=REPORTS_API)
    assert_oauth_error(delegate(client, for_reports), 400, "invalid_grant")


def test_a_resource_server_exchanges_a_token_issued_for_itself(client, ctr):
    reports_client(ctr)
    for_reports = person_token(client, scope="openid api:read", resource=REPORTS_API)
    exchanged = body(delegate(client, for_reports, creds=(REPORTS, REPORTS_SECRET)))
    claims = claims_of(exchanged["access_token"])
    assert claims["act"] == {"sub": REPORTS} and claims["scope"] == "api:read"


def test_a_token_naming_tessera_among_its_audiences_is_accepted_as_subject(client, ctr):
    consent(ctr, "api:read")
    response = client.http.post("/oauth/token", headers={
        "Content-Type": "application/x-www-form-urlencoded"}, body=urlencode([
            ("grant_type", "password"), ("client_id", CLI), ("username", "alice"),
            ("password", "password4alice"), ("scope", "openid api:read"),
            ("resource", ISSUER), ("resource", ORDERS)]).encode())
    both = body(response)["access_token"]
    assert claims_of(both)["aud"] == [ISSUER, ORDERS]
    exchanged = body(delegate(client, both))
    assert claims_of(exchanged["access_token"])["act"] == {"sub": APP}
