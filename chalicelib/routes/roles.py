"""The roles API (SPEC §6): roles, policies, role keys and trust policies.

Authenticated by an access token of a session or by a PAT; every call needs
``roles:manage``. Only the owner sees a role: another user's is answered as a
role that does not exist (404), on every verb. What grants lasting access
(adding a policy or a trust policy, creating a key) also needs the owner's
password in the body (``"password"``) or a sign-in younger than ten minutes, as
PAT changes do (``services.confirmation``).

Bodies are parsed at the edge into the models of ``chalicelib.api_models``
(imported in the routes: SPEC §9); services get the validated members.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice import Blueprint, Response

from chalicelib.container import container
from chalicelib.http import (
    api_endpoint,
    json_response,
    parse_body,
    source_ip,
)
from chalicelib.routes import ANY, caller_of, where_of

if TYPE_CHECKING:
    from chalicelib.api_models import Confirmed
    from chalicelib.services.principals import Principal

bp = Blueprint(__name__)
NO_CONTENT: dict[str, str | list[str]] = {"Cache-Control": "no-store"}


def caller() -> Principal:
    from chalicelib.services import roles

    return caller_of(bp.current_request, roles.require_scope)


def confirm(principal: Principal, body: Confirmed) -> None:
    """A lasting grant: the owner's password in ``body``, or a recent sign-in (SPEC §5)."""
    container().confirmation.require_of(principal, password=body.password, otp=body.otp,
                                        source=source_ip(bp.current_request))


def done() -> Response:
    return Response(body="", status_code=204, headers=NO_CONTENT)


# -- roles ------------------------------------------------------------------------------

@bp.route("/v1/roles", methods=["POST"], content_types=ANY)
@api_endpoint
def create_role() -> Response:
    from chalicelib.api_models import RoleCreate
    from chalicelib.services import roles

    principal, c = caller(), container()
    body = parse_body(bp.current_request, RoleCreate)
    role = c.roles.create(principal.user, body.name, body.description)
    return json_response(roles.role_view(role), status=201)


@bp.route("/v1/roles", methods=["GET"], content_types=ANY)
@api_endpoint
def list_roles() -> Response:
    from chalicelib.services import roles

    principal, c = caller(), container()
    return json_response({"roles": [roles.role_view(r) for r in c.roles.list(principal.user)]})


@bp.route("/v1/roles/{name}", methods=["GET"], content_types=ANY)
@api_endpoint
def get_role(name: str) -> Response:
    from chalicelib.services import roles

    principal, c = caller(), container()
    return json_response(roles.role_view(c.roles.get(principal.user, name)))


@bp.route("/v1/roles/{name}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def delete_role(name: str) -> Response:
    principal, c = caller(), container()
    c.roles.delete(principal.user, name)
    return done()


# -- policies ---------------------------------------------------------------------------

@bp.route("/v1/roles/{name}/policies", methods=["POST"], content_types=ANY)
@api_endpoint
def add_policy(name: str) -> Response:
    from chalicelib.api_models import PolicyAdd
    from chalicelib.services import roles

    principal, c = caller(), container()
    c.roles.own(principal.user, name)
    body = parse_body(bp.current_request, PolicyAdd)
    confirm(principal, body)
    policy_id, permission = c.roles.add_policy(principal.user, name, body.permission)
    return json_response(roles.policy_view(policy_id, permission), status=201)


@bp.route("/v1/roles/{name}/policies", methods=["GET"], content_types=ANY)
@api_endpoint
def list_policies(name: str) -> Response:
    from chalicelib.services import roles

    principal, c = caller(), container()
    return json_response({"policies": roles.policies_view(c.roles.get(principal.user, name))})


@bp.route("/v1/roles/{name}/policies/{policy_id}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def remove_policy(name: str, policy_id: str) -> Response:
    principal, c = caller(), container()
    c.roles.remove_policy(principal.user, name, policy_id)
    return done()


# -- keys -------------------------------------------------------------------------------

@bp.route("/v1/roles/{name}/keys", methods=["POST"], content_types=ANY)
@api_endpoint
def create_key(name: str) -> Response:
    from chalicelib.api_models import RoleKeyCreate

    principal, c = caller(), container()
    c.roles.own(principal.user, name)     # another user's role: 404 before anything else
    body = parse_body(bp.current_request, RoleKeyCreate, optional=True)
    confirm(principal, body)
    issued = c.roles.create_key(principal.user, name, body.description,
                                where_of(bp.current_request))
    return json_response(issued.view(), status=201)


@bp.route("/v1/roles/{name}/keys", methods=["GET"], content_types=ANY)
@api_endpoint
def list_keys(name: str) -> Response:
    from chalicelib.services import roles

    principal, c = caller(), container()
    return json_response({"keys": roles.keys_view(c.roles.get(principal.user, name))})


@bp.route("/v1/roles/{name}/keys/{key_id}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def revoke_key(name: str, key_id: str) -> Response:
    principal, c = caller(), container()
    c.roles.revoke_key(principal.user, name, key_id, where_of(bp.current_request))
    return done()


# -- trust ------------------------------------------------------------------------------

@bp.route("/v1/roles/{name}/trust", methods=["POST"], content_types=ANY)
@api_endpoint
def add_trust(name: str) -> Response:
    from chalicelib.api_models import TrustAdd

    principal, c = caller(), container()
    c.roles.own(principal.user, name)
    body = parse_body(bp.current_request, TrustAdd)
    confirm(principal, body)
    trust = c.roles.add_trust(principal.user, name, body.given("password"),
                              where_of(bp.current_request))
    return json_response(trust.view(), status=201)


@bp.route("/v1/roles/{name}/trust", methods=["GET"], content_types=ANY)
@api_endpoint
def list_trust(name: str) -> Response:
    from chalicelib.services import roles

    principal, c = caller(), container()
    return json_response({"trust": roles.trust_view(c.roles.get(principal.user, name))})


@bp.route("/v1/roles/{name}/trust/{trust_id}", methods=["DELETE"], content_types=ANY)
@api_endpoint
def remove_trust(name: str, trust_id: str) -> Response:
    principal, c = caller(), container()
    c.roles.remove_trust(principal.user, name, trust_id, where_of(bp.current_request))
    return done()
