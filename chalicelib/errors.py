"""One error hierarchy for the whole service.

Nothing here imports Chalice or boto3: services and storage raise these, and
``chalicelib.http`` renders them in exactly one place, as RFC 6749 §5.2 JSON on
``/oauth/*`` and as RFC 9457 problem JSON everywhere else.

Every error has a public ``description`` that is safe to send to a client and an
optional internal ``detail`` that is logged and never sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import ClassVar

REALM = "tessera"
# RFC 7617 §2: the Basic challenge; §2.1: credentials are UTF-8.
BASIC_CHALLENGE = f'Basic realm="{REALM}", charset="UTF-8"'


def bearer_challenge(error: str | None = None, scope: str | None = None) -> str:
    """RFC 6750 §3: the Bearer challenge; ``error`` only when a token was presented (§3.1)."""
    challenge = f'Bearer realm="{REALM}"'
    if error:
        challenge += f', error="{error}"'
    if scope:
        challenge += f', scope="{scope}"'
    return challenge


class TesseraError(Exception):
    """Base of every error the service raises on purpose.

    ``challenges`` are the ``WWW-Authenticate`` challenges of the answer, one
    header field each (RFC 9110 §11.6.1): every 401 carries at least one.
    """

    status: ClassVar[int] = 400
    title: ClassVar[str] = "Bad Request"

    def __init__(self, description: str = "", *, detail: str = "",
                 headers: Mapping[str, str] | None = None,
                 extra: Mapping[str, object] | None = None,
                 challenges: Iterable[str] = ()) -> None:
        super().__init__(description or self.title)
        self.description = description or self.title
        self.detail = detail
        self.headers: dict[str, str] = dict(headers or {})
        self.extra: dict[str, object] = dict(extra or {})
        self.challenges: tuple[str, ...] = tuple(challenges)


# --------------------------------------------------------------------------
# OAuth 2 errors (RFC 6749 §5.2, RFC 8628 §3.5, RFC 7009 §2.2.1)
# --------------------------------------------------------------------------

class OAuthError(TesseraError):
    """An error of the OAuth endpoints, rendered as ``{"error", "error_description"}``."""

    error: ClassVar[str] = "invalid_request"


class InvalidRequest(OAuthError):
    """RFC 6749 §5.2: "The request is missing a required parameter, includes an
    unsupported parameter value (other than grant type), repeats a parameter,
    includes multiple credentials, utilizes more than one mechanism for
    authenticating the client, or is otherwise malformed."
    """

    error = "invalid_request"


class InvalidClient(OAuthError):
    """RFC 6749 §5.2: "Client authentication failed (e.g., unknown client, no
    client authentication included, or unsupported authentication method)." The
    server "MAY return an HTTP 401 (Unauthorized) status code" and "MUST respond
    with an HTTP 401" plus ``WWW-Authenticate`` when the client used the
    Authorization header.
    """

    error = "invalid_client"
    status = 401
    title = "Unauthorized"


class InvalidGrant(OAuthError):
    """RFC 6749 §5.2: "The provided authorization grant (e.g., authorization code,
    resource owner credentials) or refresh token is invalid, expired, revoked,
    does not match the redirection URI used in the authorization request, or was
    issued to another client."
    """

    error = "invalid_grant"


class UnauthorizedClient(OAuthError):
    """RFC 6749 §5.2: "The authenticated client is not authorized to use this
    authorization grant type."
    """

    error = "unauthorized_client"


class UnsupportedGrantType(OAuthError):
    """RFC 6749 §5.2: "The authorization grant type is not supported by the
    authorization server."
    """

    error = "unsupported_grant_type"


class InvalidScope(OAuthError):
    """RFC 6749 §5.2: "The requested scope is invalid, unknown, malformed, or
    exceeds the scope granted by the resource owner."
    """

    error = "invalid_scope"


class InvalidTarget(OAuthError):
    """RFC 8707 §2: "The requested resource is invalid, missing, unknown, or
    malformed." RFC 8693 §2.2.2: "The authorization server is unwilling or unable
    to issue a token for any target service indicated by the resource or audience
    parameters."
    """

    error = "invalid_target"


class UnsupportedTokenType(OAuthError):
    """RFC 7009 §2.2.1: "The authorization server does not support the revocation
    of the presented token type."
    """

    error = "unsupported_token_type"


class AuthorizationPending(OAuthError):
    """RFC 8628 §3.5: "The authorization request is still pending as the end user
    hasn't yet completed the user-interaction steps."
    """

    error = "authorization_pending"


class SlowDown(OAuthError):
    """RFC 8628 §3.5: "A variant of 'authorization_pending', the authorization
    request is still pending and polling should continue, but the interval MUST
    be increased by 5 seconds for this and all subsequent requests."
    """

    error = "slow_down"


class AccessDenied(OAuthError):
    """RFC 8628 §3.5: "The authorization request was denied." RFC 6749 §4.1.2.1:
    "The resource owner or authorization server denied the request."
    """

    error = "access_denied"


class UnsupportedResponseType(OAuthError):
    """RFC 6749 §4.1.2.1: "The authorization server does not support obtaining an
    authorization code using this method."
    """

    error = "unsupported_response_type"


class LoginRequired(OAuthError):
    """OIDC Core §3.1.2.6: "The Authorization Server requires End-User
    authentication." (``prompt=none`` and nobody is signed in)
    """

    error = "login_required"


class ConsentRequired(OAuthError):
    """OIDC Core §3.1.2.6: "The Authorization Server requires End-User consent."
    (``prompt=none`` and no remembered consent covers the request)
    """

    error = "consent_required"


class RequestNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: "The OP does not support use of the request parameter." """

    error = "request_not_supported"


class RequestUriNotSupported(OAuthError):
    """OIDC Core §3.1.2.6: "The OP does not support use of the request_uri parameter." """

    error = "request_uri_not_supported"


class ExpiredToken(OAuthError):
    """RFC 8628 §3.5: "The 'device_code' has expired, and the device authorization
    session has concluded."
    """

    error = "expired_token"


class InvalidToken(OAuthError):
    """RFC 6750 §3.1: "The access token provided is expired, revoked, malformed,
    or invalid for other reasons." Used by the OIDC UserInfo endpoint.
    """

    error = "invalid_token"
    status = 401
    title = "Unauthorized"


class TemporarilyUnavailable(OAuthError):
    """RFC 6749 §4.1.2.1: "The authorization server is currently unable to handle
    the request due to a temporary overloading or maintenance of the server."
    """

    error = "temporarily_unavailable"
    status = 503
    title = "Service Unavailable"


class MisdirectedRequest(OAuthError):
    """RFC 9110 §15.5.20: the request "was directed at a server that is unable or
    unwilling to produce an authoritative response for the target URI": its Host
    is not the configured issuer's. An OAuth error so that ``/oauth/*`` speaks
    RFC 6749 JSON; under ``/v1`` it is problem JSON, on the pages HTML.
    """

    error = "invalid_request"
    status = 421
    title = "Misdirected Request"


# --------------------------------------------------------------------------
# API errors (RFC 9457 problem details)
# --------------------------------------------------------------------------

class ProblemError(TesseraError):
    """An error of the JSON API, rendered as ``application/problem+json``."""


class BadRequest(ProblemError):
    status = 400
    title = "Bad Request"


class Unauthorized(ProblemError):
    """The presented credential is missing, unknown, expired or revoked.

    SPEC §2: an expired or unknown bearer token gets exactly this body.
    """

    status = 401
    title = "Unauthorized"

    def __init__(self, description: str = "Provided token is not valid", **kw: object) -> None:
        super().__init__(description, **kw)  # type: ignore[arg-type]


class Forbidden(ProblemError):
    status = 403
    title = "Forbidden"


class NotFound(ProblemError):
    status = 404
    title = "Not Found"


class Conflict(ProblemError):
    status = 409
    title = "Conflict"


class PayloadTooLarge(ProblemError):
    status = 413
    title = "Content Too Large"


class UnsupportedMediaType(ProblemError):
    status = 415
    title = "Unsupported Media Type"


class Unprocessable(ProblemError):
    status = 422
    title = "Unprocessable Content"


class TooManyRequests(ProblemError):
    status = 429
    title = "Too Many Requests"


class ServiceUnavailable(ProblemError):
    """DynamoDB throttled or unreachable (SPEC §8): 503 with ``Retry-After``."""

    status = 503
    title = "Service Unavailable"


# --------------------------------------------------------------------------
# Domain errors raised below the HTTP layer, mapped by the caller
# --------------------------------------------------------------------------

class StorageUnavailable(TesseraError):
    """The store throttled or failed; nothing was written that a client relies on."""

    status = 503
    title = "Service Unavailable"


class StorageContended(StorageUnavailable):
    """Writes kept losing to concurrent transactions on the same items; each loss
    changed nothing, so a later retry may succeed (still a 503 if nothing decides
    otherwise: the caller may read again and find the write could never succeed)."""


class ConditionFailed(TesseraError):
    """A conditional write lost: the state it required was no longer there.

    ``item`` carries the item as it was (``ALL_OLD``) when the store returned it.
    """

    def __init__(self, description: str = "condition failed", *,
                 item: Mapping[str, object] | None = None) -> None:
        super().__init__(description)
        self.item = dict(item) if item is not None else None


class InsufficientScope(OAuthError):
    """RFC 6750 §3.1: "The request requires higher privileges than provided by the
    access token."
    """

    error = "insufficient_scope"
    status = 403
    title = "Forbidden"
