"""The authorization endpoint (RFC 6749 §4.1), RP-initiated logout and the
connected-apps page and API (SPEC §2): thin routes over ``web/`` and services."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import Container, container
from chalicelib.errors import NotFound
from chalicelib.http import api_endpoint, json_response
from chalicelib.routes import ANY, caller_of, where_of
from chalicelib.routes.page_visit import moved, serve
from chalicelib.web.page import page_endpoint

if TYPE_CHECKING:
    from chalicelib.services.principals import Principal
    from chalicelib.web.authorize_page import AuthorizePage, LogoutPage
    from chalicelib.web.consents_page import ConsentsPage

bp = Blueprint(__name__)
APPS = "/account/apps"
BACK = (APPS, "Back to your connected apps")


def _authorize(c: Container) -> AuthorizePage:
    from chalicelib.web.authorize_page import AuthorizePage  # on the first page request

    return AuthorizePage(c.authorization, c.clock)


def _logout(c: Container) -> LogoutPage:
    from chalicelib.services.logout import RpLogout
    from chalicelib.web.authorize_page import LogoutPage

    return LogoutPage(RpLogout(c.keyring.jwks_json, c.client_directory.get, lambda: c.sessions))


def _consents(c: Container) -> ConsentsPage:
    from chalicelib.web.consents_page import ConsentsPage

    return ConsentsPage(c.authorization, c.client_directory.get)


@bp.route("/oauth/authorize", methods=["GET"], content_types=ANY)
@page_endpoint
def authorize_get() -> Response:
    c = container()
    return serve(bp.current_request, c, _authorize(c).get)


@bp.route("/oauth/authorize", methods=["POST"], content_types=ANY)
@page_endpoint
def authorize_post() -> Response:
    c = container()
    return serve(bp.current_request, c, _authorize(c).post, form=True)


@bp.route("/oauth/logout", methods=["GET"], content_types=ANY)
@page_endpoint
def logout_get() -> Response:
    c = container()
    return serve(bp.current_request, c, _logout(c).get)


@bp.route("/oauth/logout", methods=["POST"], content_types=ANY)
@page_endpoint
def logout_post() -> Response:
    c = container()
    return serve(bp.current_request, c, _logout(c).post, form=True)


@bp.route("/account/apps", methods=["GET"], content_types=ANY)
@page_endpoint
def consents_page() -> Response:
    c = container()
    return serve(bp.current_request, c, _consents(c).show, link=BACK)


@bp.route("/account/apps/withdraw", methods=["POST"], content_types=ANY)
@page_endpoint
def consents_withdraw() -> Response:
    c = container()
    return serve(bp.current_request, c, _consents(c).withdraw, form=True, link=BACK)


# The connected apps page moved into the account console; its old URLs answer 308.
@bp.route("/consents", methods=["GET"], content_types=ANY)
@page_endpoint
def old_consents_page() -> Response:
    return moved(bp.current_request, container(), APPS)


@bp.route("/consents/signin", methods=["POST"], content_types=ANY)
@page_endpoint
def old_consents_signin() -> Response:
    return moved(bp.current_request, container(), "/account/signin")


@bp.route("/consents/withdraw", methods=["POST"], content_types=ANY)
@page_endpoint
def old_consents_withdraw() -> Response:
    return moved(bp.current_request, container(), APPS + "/withdraw")


# -- the JSON API: /v1/consents (needs sessions:manage, like /v1/sessions) -------------

def _caller() -> Principal:
    from chalicelib.services import account

    return caller_of(bp.current_request, account.require_sessions_scope)


@bp.route("/v1/consents", methods=["GET"], content_types=ANY)
@api_endpoint
def list_consents() -> Response:
    from chalicelib.services import account

    principal, c = _caller(), container()
    views = [account.consent_view(consent, c.client_directory.get(consent.client_id))
             for consent in c.authorization.consents_of(principal.user.id)]
    return json_response({"consents": views})


@bp.route("/v1/consents/{client_id}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def withdraw_consent(client_id: str) -> Response:
    principal = _caller()
    try:
        container().authorization.withdraw(principal.user, client_id,
                                           where_of(bp.current_request))
    except NotFound as exc:
        raise NotFound("No consent for this application") from exc
    return Response(body="", status_code=204, headers={"Cache-Control": "no-store"})
