"""Requests for the abuse tests: bursts against the real local server."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlencode

from tests.e2e.support import HttpResponse, LiveServer

# Thirty scrypt hashes at once share two cores: answers can take longer than
# the 10 s that tests/e2e allows one request.
BURST_TIMEOUT = 120


def post_form(url: str, fields: dict[str, str],
              headers: dict[str, str] | None = None) -> HttpResponse:
    """One real form POST; 4xx and 5xx are returned, not raised."""
    request = urllib.request.Request(
        url, data=urlencode(fields).encode(), method="POST",
        headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=BURST_TIMEOUT) as response:
            return HttpResponse(response.status, dict(response.headers.items()), response.read())
    except urllib.error.HTTPError as err:
        return HttpResponse(err.code, dict(err.headers.items()), err.read())


def moto_dynamodb(server: LiveServer) -> Any:
    """A DynamoDB client of its own on the server's moto (as another process would have)."""
    import boto3

    env = server.admin_env
    return boto3.client("dynamodb", endpoint_url=env["AWS_ENDPOINT_URL"],
                        region_name=env["AWS_DEFAULT_REGION"],
                        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"])


def throttle_table(server: LiveServer) -> str:
    from chalicelib.config import Settings

    return Settings.from_env(server.admin_env).table("throttle")
