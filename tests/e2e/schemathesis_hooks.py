"""Schemathesis hooks of ``test_schemathesis.py`` (loaded by ``st run`` through
``SCHEMATHESIS_HOOKS``): every request is alice's, with a fresh access token of a
password sign-in (tokens:manage, sessions:manage, roles:manage: every operation is
reachable, and the sign-in is recent, so changes need no password).

A generated request may end that session (``POST /v1/logout``), and generated
wrong passwords lock alice out of signing in; on a 401 schemathesis asks for a
new token, and this provider clears the sign-in throttle first (as the fuzz
suite's account does), so the campaign keeps testing as alice.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import urllib.request
from typing import Any

import schemathesis

BASE_URL = os.environ.get("TESSERA_ST_BASE_URL", "")
DYNAMODB = os.environ.get("TESSERA_ST_DYNAMODB", "")
THROTTLE_TABLE = os.environ.get("TESSERA_ST_THROTTLE_TABLE", "")
CLI = "cf83e1357eefb8bd"
SCOPE = "openid profile email tokens:manage sessions:manage roles:manage api:read"


def _forget_failures() -> None:
    import boto3

    dynamodb = boto3.client("dynamodb", endpoint_url=DYNAMODB, region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    for page in dynamodb.get_paginator("scan").paginate(TableName=THROTTLE_TABLE):
        for item in page.get("Items", []):
            dynamodb.delete_item(TableName=THROTTLE_TABLE, Key={"pk": item["pk"]})


def sign_in() -> str:
    """alice's access token from the password grant (RFC 6749 §4.3)."""
    _forget_failures()
    form = urllib.parse.urlencode({"grant_type": "password", "client_id": CLI,
                                   "username": "alice", "password": "password4alice",
                                   "scope": SCOPE}).encode()
    with urllib.request.urlopen(BASE_URL + "/oauth/token", data=form, timeout=10) as answer:
        return str(json.load(answer)["access_token"])


@schemathesis.auth(refresh_interval=600, retry_on=[401])
class AliceSignIn:
    def get(self, case: Any, context: Any) -> str:
        return sign_in()

    def set(self, case: Any, data: str, context: Any) -> None:
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


# Rules that no schema can state: they depend on the stage (its scope catalog, its
# expiry policy), on the caller (the scopes alice holds) or on today's date. A
# schema-valid request may break one of them; its 422 then names no field (the
# service's refusal, SPEC §5) and says which rule. Every other 422 of valid data
# breaks a rule of shape that the document should have stated: a failure.
STAGE_RULES = ("Unknown scopes: ", "You do not hold these scopes: ", "api_set must be one of: ",
               "expires_at must be ", "expires_at is required: ",
               # http issuers on loopback hosts only where TESSERA_FEDERATION_ALLOW_HTTP is on
               "issuer must be an https URL",
               # a passkey's credential must verify (its signature, challenge, origin)
               "The passkey could not be verified")


@schemathesis.check
def valid_data_breaks_only_rules_of_the_stage(ctx: Any, response: Any, case: Any) -> bool | None:
    meta = getattr(case, "meta", None)
    if meta is None or not meta.generation.mode.is_positive or response.status_code != 422:
        return None
    errors = json.loads(response.content)["errors"]
    shape = [e for e in errors if "pointer" in e or "parameter" in e
             or not e["detail"].startswith(STAGE_RULES)]
    if shape:
        raise AssertionError(f"schema-valid data refused by a rule of shape: {shape}")
    return None
