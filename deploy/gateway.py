"""API Gateway's own errors as RFC 9457 problem JSON (SPEC §2).

Requests the functions never see (no such route, throttled, body too large,
integration timeout) are answered by API Gateway itself. These gateway
responses give them the same shape as the errors ``chalicelib.http`` renders.
They go into the OpenAPI body (``x-amazon-apigateway-gateway-responses``) rather
than separate resources so that a change redeploys the API stage with them.

Gateway response templates only substitute variables; they cannot read the
status code. Types with a known status carry it in the body; the two catch-alls
keep API Gateway's status, omit the optional ``status`` member (RFC 9457 §3.1.2)
and use the title of the status they most often carry.
"""

from __future__ import annotations

import json
from typing import Any

PROBLEM = "application/problem+json"
_MESSAGE = "$context.error.messageString"  # already a quoted JSON string

# Response type -> (status or None to keep API Gateway's, title, fixed detail or
# None for API Gateway's message). Titles are RFC 9110 reason phrases.
RESPONSES: dict[str, tuple[int | None, str, str | None]] = {
    # API Gateway answers an unknown path or method with a 403 "Missing
    # Authentication Token"; to a client of this API it is a 404.
    "MISSING_AUTHENTICATION_TOKEN": (404, "Not Found", "No such resource"),
    "RESOURCE_NOT_FOUND": (404, "Not Found", "No such resource"),
    "THROTTLED": (429, "Too Many Requests", None),
    "QUOTA_EXCEEDED": (429, "Too Many Requests", None),
    "REQUEST_TOO_LARGE": (413, "Content Too Large", None),
    "UNSUPPORTED_MEDIA_TYPE": (415, "Unsupported Media Type", None),
    "ACCESS_DENIED": (403, "Forbidden", None),
    "WAF_FILTERED": (403, "Forbidden", None),
    "INTEGRATION_FAILURE": (502, "Bad Gateway", None),
    "INTEGRATION_TIMEOUT": (504, "Gateway Timeout", None),
    "DEFAULT_4XX": (None, "Bad Request", None),
    "DEFAULT_5XX": (None, "Internal Server Error", None),
}

# Static header values are single-quoted in API Gateway's mapping syntax.
_HEADERS = {"Content-Type": PROBLEM, "Cache-Control": "no-store"}
_RETRY_AFTER = {"THROTTLED": "1", "QUOTA_EXCEEDED": "60", "INTEGRATION_TIMEOUT": "1"}


def problem_template(status: int | None, title: str, detail: str | None) -> str:
    """The body template: JSON once API Gateway substitutes ``$context`` variables."""
    parts = ['"type":"about:blank"', f'"title":{json.dumps(title)}']
    if status is not None:
        parts.append(f'"status":{status}')
    parts.append(f'"detail":{json.dumps(detail) if detail is not None else _MESSAGE}')
    return "{" + ",".join(parts) + "}"


def gateway_responses() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for kind, (status, title, detail) in RESPONSES.items():
        headers = dict(_HEADERS)
        if kind in _RETRY_AFTER:
            headers["Retry-After"] = _RETRY_AFTER[kind]
        response: dict[str, Any] = {
            "responseParameters": {f"gatewayresponse.header.{k}": f"'{v}'" for k, v in headers.items()},
            # Keyed by content type; API Gateway's built-in responses use this one key too.
            "responseTemplates": {"application/json": problem_template(status, title, detail)},
        }
        if status is not None:
            response["statusCode"] = str(status)
        out[kind] = response
    return out


def add_gateway_responses(openapi: dict[str, Any]) -> None:
    openapi.setdefault("x-amazon-apigateway-gateway-responses", {}).update(gateway_responses())
