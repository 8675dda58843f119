"""Hypothesis strategies for hostile HTTP requests against every route.

Requests are built from a vocabulary of the parameters the service knows (so
that they get past the first checks and reach deeper code), mixed with
credentials that are valid, forged, malformed or huge, bodies of every content
type, bytes that are not UTF-8, lone surrogates, duplicates and oversized values.
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from hypothesis import strategies as st

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")

PARAMS = (
    "grant_type", "client_id", "client_secret", "username", "password", "scope", "refresh_token",
    "device_code", "token", "token_type_hint", "user_code", "code", "redirect_uri", "code_verifier",
    "resource", "audience", "subject_token", "subject_token_type", "state", "nonce", "response_type",
    "code_challenge", "code_challenge_method", "csrf", "action", "description", "api_set",
    "expires_at", "expires_in_days", "scopes", "ids", "session", "name", "permission",
)
GRANTS = ("password", "refresh_token", "urn:ietf:params:oauth:grant-type:device_code",
          "client_credentials", "authorization_code",
          "urn:ietf:params:oauth:grant-type:token-exchange", "implicit", "")
CONTENT_TYPES = ("application/x-www-form-urlencoded", "application/json", "text/plain",
                 "multipart/form-data; boundary=x", "application/x-www-form-urlencoded; charset=latin1",
                 "application/json; charset=utf-16", "", "garbage", "*/*", "application/problem+json")

# Strings that break naive code: empty, whitespace, control characters, non-ASCII,
# look-alikes, percent-escapes, DynamoDB-hostile sizes, format-shaped junk.
NASTY = (
    "", " ", "\t", "\x00", "\u200b", "é", "ß", "İ", "%", "%00", "%ff", "%ED%A0%80", "..", "../..",
    "null", "[]", "{}", "0", "-1", "1e309", "99999999999999999999999", "true",
    "tsp_", "tsr_", "tsd_", "tka_", "tsk_", "tsp_" + "A" * 60, "a" * 2049, "x" * 20000,
    "Bearer", "Basic", "openid openid", "openid  profile", " openid", "WDJB-MJHT", "wdjbmjht",
    "alice", "password4alice", "cf83e1357eefb8bd", "resource-server",
)


# Bodies the JSON API accepts (SPEC §5, §6), the starting points of hostile ones.
VALID_BODIES: tuple[dict[str, Any], ...] = (
    {"description": "ci", "api_set": "ide-plugins"},
    {"description": "ci", "scopes": ["profile", "api:read"], "expires_at": "2027-01-01"},
    {"description": "edited"},
    {"ids": ["x"]},
    {"password": "password4alice"},
    {"name": "alice.ci", "description": "CI"},
    {"permission": "data:get@urn:tessera:data:alice.workspace"},
)


@dataclass
class Credentials:
    """Real credentials of the seeded account, for requests that reach deep paths."""

    access_token: str = ""
    refresh_token: str = ""
    pat: str = ""
    pat_id: str = ""
    session_id: str = ""
    client_basic: tuple[str, str] = ("", "")
    extra: dict[str, str] = field(default_factory=dict)

    def values(self) -> list[str]:
        return [v for v in (self.access_token, self.refresh_token, self.pat, self.pat_id,
                            self.session_id, *self.extra.values()) if v]


@dataclass
class FuzzRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def describe(self) -> str:
        return f"{self.method} {self.path[:200]} {self.headers!r:.300} {self.body[:300]!r}"


def text_values(creds: Credentials) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from(NASTY),
        st.sampled_from(GRANTS),
        st.sampled_from(creds.values() or [""]),
        st.text(max_size=40),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=12),
        st.integers(min_value=1, max_value=70000).map(lambda n: "z" * n),
    )


def _flip(token: str, data: st.DataObject) -> str:
    if not token:
        return token
    i = data.draw(st.integers(0, len(token) - 1))
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1:]


def authorization(creds: Credentials) -> st.SearchStrategy[str | None]:
    valid = creds.values()

    @st.composite
    def build(draw: st.DrawFn) -> str | None:
        kind = draw(st.sampled_from(("valid", "valid", "valid", "none", "bearer", "basic", "basic-raw",
                                     "weird", "flipped")))
        token = draw(st.one_of(st.sampled_from(valid or [""]), text_values(creds)))
        if kind == "none":
            return None
        if kind == "valid":
            # Real credentials, so that hostile bodies reach the code behind authentication.
            return draw(st.sampled_from([
                *(f"Bearer {v}" for v in (creds.access_token, creds.access_token, creds.pat) if v),
                *("Basic " + base64.b64encode(f"{u}:{p}".encode()).decode()
                  for u, p in (creds.client_basic, ("any", creds.pat)) if p),
            ] or ["Bearer x"]))
        if kind == "bearer":
            return draw(st.sampled_from(("Bearer ", "bearer ", "Bearer  ", "BEARER "))) + token
        if kind == "basic":
            user = draw(st.one_of(st.sampled_from((creds.client_basic[0], "any", "", ":")),
                                  text_values(creds)))
            secret = draw(st.one_of(st.sampled_from((creds.client_basic[1], token)),
                                    text_values(creds)))
            raw = f"{user}:{secret}".encode("utf-8", "surrogatepass")
            return "Basic " + base64.b64encode(raw).decode("ascii")
        if kind == "basic-raw":
            blob = draw(st.binary(max_size=64))
            return "Basic " + draw(st.sampled_from((base64.b64encode(blob).decode(), "!!!", "a",
                                                    base64.b64encode(blob).decode()[:-1], "")))
        if kind == "flipped":
            return "Bearer " + _flip(token, draw(st.data()))
        return draw(st.sampled_from(("Digest x", "Negotiate", "Bearer", "Basic", " ", "x" * 9000,
                                     "Bearer a b c", "Bearer\tx")))

    return build()


def form_body(creds: Credentials) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        pairs = draw(st.lists(st.tuples(st.one_of(st.sampled_from(PARAMS), st.text(max_size=8)),
                                        text_values(creds)), max_size=8))
        if pairs and draw(st.booleans()):
            pairs.append(pairs[0])      # RFC 6749 §3.2: duplicates are an error
        parts = [quote(k.encode("utf-8", "surrogatepass"), safe="") + "="
                 + quote(v.encode("utf-8", "surrogatepass"), safe="") for k, v in pairs]
        junk = draw(st.sampled_from(("", "&", "&&", "=", "a", "%", "%zz", "%ff=1", "a=%ED%A0%80",
                                     "=x", "a=b=c", "+=+")))
        return "&".join([*parts, junk]).encode("ascii")

    return build()


def _json_value(creds: Credentials) -> st.SearchStrategy[Any]:
    scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                        text_values(creds))
    return st.recursive(scalars, lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(PARAMS), inner, max_size=4)),
        max_leaves=10)


def json_body(creds: Credentials) -> st.SearchStrategy[bytes]:
    @st.composite
    def build(draw: st.DrawFn) -> bytes:
        kind = draw(st.sampled_from(("shaped", "shaped", "object", "value", "surrogate", "broken", "deep")))
        if kind == "shaped":
            # A body the API would accept, with one member made hostile.
            obj: dict[str, Any] = dict(draw(st.sampled_from(VALID_BODIES)))
            obj[draw(st.sampled_from([*obj, *PARAMS[:5]]))] = draw(st.one_of(
                text_values(creds), _json_value(creds), st.just("\ud800"),
                st.just("x\udfffy")))
            return json.dumps(obj).encode("ascii")  # ensure_ascii: a lone surrogate becomes \\ud800
        if kind == "object":
            obj = draw(st.dictionaries(st.one_of(st.sampled_from(PARAMS), st.text(max_size=6)),
                                       _json_value(creds), max_size=6))
            return json.dumps(obj).encode("utf-8", "surrogatepass")
        if kind == "value":
            return json.dumps(draw(_json_value(creds))).encode("utf-8", "surrogatepass")
        if kind == "surrogate":
            key = draw(st.sampled_from(PARAMS))
            return ('{"' + key + '": "\\ud800", "description": "x\\udfff"}').encode()
        if kind == "deep":
            depth = draw(st.integers(10, 5000))
            return b"[" * depth + b"]" * depth
        return draw(st.sampled_from((b"{", b'{"a":}', b"\xff\xfe", b'{"a": 1, "a": 2}', b"nul",
                                     b'{"description": "\xed\xa0\x80"}')))

    return build()


def _fill(template: str, draw: st.DrawFn, creds: Credentials) -> str:
    def one(_: re.Match[str]) -> str:
        value = draw(st.one_of(st.sampled_from(creds.values() or ["x"]),
                               st.sampled_from(("x", "0", "%20", "%ff", "%ED%A0%80", "a" * 3000,
                                                ".", "~", "%2F", "tsp_abc")),
                               st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x2FF,
                                                              exclude_characters="/?#%"),
                                       min_size=1, max_size=20)))
        return value if "%" in value else quote(value, safe="")
    return re.sub(r"\{[^}]+\}", one, template)


def requests(routes: list[tuple[str, str]], creds: Credentials) -> st.SearchStrategy[FuzzRequest]:
    """Requests aimed at known routes (mostly) or anywhere (some)."""

    @st.composite
    def build(draw: st.DrawFn) -> FuzzRequest:
        template, route_method = draw(st.sampled_from(routes))
        path = _fill(template, draw, creds)
        method = route_method if draw(st.integers(0, 9)) < 8 else draw(st.sampled_from(METHODS))
        if draw(st.integers(0, 9)) == 0:
            path = draw(st.sampled_from(("/", "/v1", "/v1/", "/oauth", "/oauth/", "/x", "/.well-known/",
                                         "/v1/tokens/", "/%ff", "/v1/../oauth/token", "//oauth/token")))
        if draw(st.booleans()):
            query = draw(st.lists(st.tuples(st.sampled_from(PARAMS), text_values(creds)), max_size=3))
            if query:
                path += "?" + "&".join(quote(k) + "=" + quote(v.encode("utf-8", "surrogatepass"), safe="")
                                       for k, v in query)
        headers: dict[str, str] = {}
        auth = draw(authorization(creds))
        if auth is not None:
            headers["Authorization"] = auth
        kind = draw(st.sampled_from(("form", "form", "json", "json", "none", "bytes", "huge")))
        body = b""
        if kind == "form":
            body = draw(form_body(creds))
        elif kind == "json":
            body = draw(json_body(creds))
        elif kind == "bytes":
            body = draw(st.binary(max_size=200))
        elif kind == "huge":
            body = b"a=" + b"b" * draw(st.integers(16 * 1024, 70 * 1024))
        # Mostly the content type that matches the body, so that it gets past the
        # media-type check and reaches the parsers; sometimes anything at all.
        matching = {"form": "application/x-www-form-urlencoded", "json": "application/json"}.get(kind)
        ctype = matching if matching and draw(st.integers(0, 4)) else draw(st.sampled_from(CONTENT_TYPES))
        if ctype:
            headers["Content-Type"] = ctype
        if draw(st.integers(0, 4)) == 0:
            headers["Cookie"] = draw(st.sampled_from(("tessera_signin=x", "tessera_signin=", "a=b; c",
                                                      "tessera_signin=" + "A" * 5000, "=;=;")))
        if draw(st.integers(0, 5)) == 0:
            headers["Accept"] = draw(st.sampled_from(("application/json", "text/html", "*/*", "")))
        return FuzzRequest(method, path, headers, body)

    return build()
