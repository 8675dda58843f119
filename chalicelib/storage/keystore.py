"""Signing keys kept in AWS Secrets Manager (SPEC §7).

One secret per stage holds the whole key set as JSON::

    {"keys": [{"kid", "alg", "status": "current"|"next"|"retired",
               "created_at", "current_since", "retired_at", "private_pem", "public_jwk"}]}

``current_since`` is when a key became current (its rotation age is measured
from it); key sets written before it existed lack it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from chalicelib.errors import StorageUnavailable
from chalicelib.storage.dynamo import aws_client

# ClientRequestToken of the secret's first version (32 to 64 characters).
FIRST_VERSION_TOKEN = "tessera-signing-keys-first-version-0001"


class KeySetExists(Exception):
    """Another instance created the key set first."""


class SecretsManagerKeyStore:
    def __init__(self, secret_name: str,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self.secret_name = secret_name
        self._client_factory = client_factory or (lambda: aws_client("secretsmanager"))

    def load(self) -> dict[str, Any] | None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            out = self._client_factory().get_secret_value(SecretId=self.secret_name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise StorageUnavailable(detail=f"secretsmanager: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(detail=f"secretsmanager: {exc}") from exc
        parsed: dict[str, Any] = json.loads(out["SecretString"])
        return parsed

    def create(self, keyset: dict[str, Any]) -> None:
        """Write the first key set into the secret the stack created empty.

        The first version carries a fixed ClientRequestToken: Secrets Manager
        refuses a second, different value under a token it has seen, so of two
        instances that both find the secret empty exactly one key set becomes
        the first and the other instance re-reads it (``KeySetExists``).
        """
        from botocore.exceptions import ClientError

        try:
            self._client_factory().put_secret_value(
                SecretId=self.secret_name, SecretString=json.dumps(keyset),
                ClientRequestToken=FIRST_VERSION_TOKEN)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code == "ResourceNotFoundException":
                # No secret at all: a local run or a test, where no stack made it.
                self._create_secret_locally(keyset)
                return
            if code in ("ResourceExistsException", "InvalidRequestException"):
                raise KeySetExists() from exc
            raise StorageUnavailable(detail=f"secretsmanager: {exc}") from exc

    def _create_secret_locally(self, keyset: dict[str, Any]) -> None:
        """Outside AWS only: on AWS the stack owns the secret and the functions may
        not create one (deploy.iam leaves this out of their policy)."""
        from botocore.exceptions import ClientError

        try:
            self._client_factory().create_secret(
                Name=self.secret_name, SecretString=json.dumps(keyset),
                Description="Tessera JWT signing keys")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceExistsException":
                raise KeySetExists() from exc
            raise StorageUnavailable(detail=f"secretsmanager: {exc}") from exc

    def save(self, keyset: dict[str, Any]) -> None:
        self._client_factory().put_secret_value(SecretId=self.secret_name,
                                                SecretString=json.dumps(keyset))
