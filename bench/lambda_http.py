"""Requests served the way Lambda serves them: an API Gateway REST proxy event
handed to the Chalice app object, which is the function's handler.

The event has the shape ``chalice.local``'s ``LambdaEventConverter`` builds
(form bodies base64-encoded, since ``application/x-www-form-urlencoded`` is a
binary type of the app, as API Gateway does), plus the top-level fields API
Gateway also sends. ``chalice.local`` itself is not imported: the cold-start
children must not pay for it, and neither should the warm measurements.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

SOURCE_IP = "192.0.2.10"   # TEST-NET-1 (RFC 5737): a documentation address
STAGE = "api"


@dataclass(frozen=True)
class Request:
    method: str
    path: str                            # may carry a query string
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]           # lower-case names
    body: bytes
    set_cookies: tuple[str, ...] = ()    # every Set-Cookie header, in order

    def json(self) -> Any:
        return json.loads(self.body)

    def cookies(self) -> dict[str, str]:
        """name -> value of every cookie the response sets."""
        out: dict[str, str] = {}
        for raw in self.set_cookies:
            name, sep, rest = raw.partition("=")
            if sep:
                out[name.strip()] = rest.split(";", 1)[0]
        return out


Driver = Callable[[Request], Response]


class LambdaContext:
    """The attributes of Lambda's context object that Chalice and the app read."""

    function_name = "tessera-bench"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:tessera-bench"
    log_group_name = "/aws/lambda/tessera-bench"
    log_stream_name = "bench"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 25_000


def _route_of(routes: Mapping[str, Any], path: str) -> tuple[str, dict[str, str]]:
    """The route template that matches ``path`` and its captured parameters."""
    if path in routes:
        return path, {}
    parts = path.strip("/").split("/")
    for template in routes:
        pattern = template.strip("/").split("/")
        if len(pattern) != len(parts):
            continue
        captured: dict[str, str] = {}
        for want, got in zip(pattern, parts, strict=True):
            if want.startswith("{") and want.endswith("}"):
                captured[want[1:-1]] = got
            elif want != got:
                break
        else:
            return template, captured
    raise LookupError(f"no route matches {path}")


def api_gateway_event(request: Request, routes: Mapping[str, Any],
                      binary_types: list[str]) -> dict[str, Any]:
    """The REST API (v1) proxy event API Gateway sends for ``request``."""
    split = urlsplit(request.path)
    template, captured = _route_of(routes, split.path)
    headers = {k.lower(): v for k, v in request.headers.items()}
    query = parse_qs(split.query, keep_blank_values=True) if split.query else None
    event: dict[str, Any] = {
        "resource": template,
        "path": split.path,
        "httpMethod": request.method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "multiValueQueryStringParameters": query,
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "pathParameters": captured or None,
        "stageVariables": None,
        "requestContext": {
            "httpMethod": request.method,
            "resourcePath": template,
            "path": f"/{STAGE}{split.path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": SOURCE_IP, "userAgent": headers.get("user-agent", "")},
        },
    }
    if request.body is not None and headers.get("content-type", "") in binary_types:
        event["body"] = base64.b64encode(request.body).decode("ascii")
        event["isBase64Encoded"] = True
    else:
        event["body"] = request.body.decode("utf-8") if request.body is not None else None
        event["isBase64Encoded"] = False
    return event


def response_of(out: Mapping[str, Any]) -> Response:
    """The handler's return value as status, lower-cased headers, body bytes and cookies."""
    raw = out.get("body") or ""
    body = base64.b64decode(raw) if out.get("isBase64Encoded") else str(raw).encode("utf-8")
    headers = {str(k).lower(): str(v) for k, v in (out.get("headers") or {}).items()}
    multi = {str(k).lower(): v for k, v in (out.get("multiValueHeaders") or {}).items()}
    cookies = ([headers["set-cookie"]] if "set-cookie" in headers else []) + list(multi.get("set-cookie", []))
    return Response(int(out["statusCode"]), headers, body, tuple(str(c) for c in cookies))


class LambdaDriver:
    """Serves requests through ``app(event, context)``, the Lambda entry point."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.routes = app.routes
        self.binary_types = list(app.api.binary_types)

    def event(self, request: Request) -> dict[str, Any]:
        return api_gateway_event(request, self.routes, self.binary_types)

    def invoke(self, event: dict[str, Any]) -> Response:
        return response_of(self.app(event, LambdaContext()))

    def __call__(self, request: Request) -> Response:
        return self.invoke(self.event(request))
