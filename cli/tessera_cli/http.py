"""HTTP with httpx (imported here, and this module only by commands that talk to a
server): one client per command, errors turned into one line each."""

from __future__ import annotations

from typing import Any

import httpx

from tessera_cli import __version__
from tessera_cli.errors import CliError

TIMEOUT = httpx.Timeout(15.0, connect=5.0)
USER_AGENT = f"tessera-cli/{__version__}"


class Unreachable(CliError):
    """The server could not be reached (refused, DNS, timeout, TLS)."""


class Http:
    def __init__(self, transport: httpx.BaseTransport | None = None) -> None:
        self.client = httpx.Client(timeout=TIMEOUT, transport=transport, follow_redirects=False,
                                   headers={"User-Agent": USER_AGENT})

    def send(self, method: str, url: str, *, bearer: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        try:
            return self.client.request(method, url, headers=headers, **kwargs)
        except httpx.HTTPError as exc:
            raise Unreachable(f"cannot reach {url}: {exc or type(exc).__name__}") from exc

    def close(self) -> None:
        self.client.close()


def json_of(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def error_message(response: httpx.Response) -> str:
    """RFC 9457 problem JSON (``detail`` and the field ``errors``) or an RFC 6749 §5.2
    error (``error_description``, else ``error``), else the status line."""
    body = json_of(response)
    if isinstance(body, dict):
        if isinstance(body.get("detail"), str):
            parts = [body["detail"]]
            for item in body.get("errors") or []:
                if isinstance(item, dict) and isinstance(item.get("detail"), str):
                    where = item.get("pointer") or item.get("parameter")
                    if item["detail"] != body["detail"]:
                        parts.append(f"{where.lstrip('#/')}: {item['detail']}" if where else item["detail"])
            return "; ".join(dict.fromkeys(parts))
        if isinstance(body.get("error"), str):
            return str(body.get("error_description") or body["error"])
    return f"HTTP {response.status_code} {response.reason_phrase}".strip()
