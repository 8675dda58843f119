"""Signing keys kept in AWS Secrets Manager (SPEC §7).

One secret per stage holds the whole key set as JSON::

    {"keys": [{"kid", "alg", "status": "current"|"next"|"retired",
               "created_at", "current_since", "retired_at", "private_pem", "public_jwk"}]}

``current_since`` is when a key became current (its rotation age is measured
from it); key sets written before it existed lack it. Keys of several
algorithms (families) share the list, each key naming its ``alg``; a set
written before RS256 existed holds ES256 keys only and stays readable as is.

Every change after creation is a compare-and-swap: the new version's
``ClientRequestToken`` is derived from the version it replaces, and Secrets
Manager refuses a second, different version under a token already used
(``ResourceExistsException``), so of two writers that read the same version
exactly one wins; an SDK retry of the winner's own call (same token, same
content) is accepted as the same write.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

from chalicelib.errors import StorageUnavailable
from chalicelib.storage.dynamo import aws_client

# ClientRequestToken of the secret's first version (32 to 64 characters).
FIRST_VERSION_TOKEN = "tessera-signing-keys-first-version-0001"


class KeySetExists(Exception):
    """Another instance created the key set first."""


class KeySetChanged(Exception):
    """Another writer replaced the stored key set since it was read."""


# Namespace of the version tokens of key-set changes (uuid5 of the replaced version).
_VERSION_NAMESPACE = uuid.UUID("5f0c8a52-3c1e-4d6b-9a57-0e1b7d2f4c3a")


class SecretsManagerKeyStore:
    def __init__(self, secret_name: str,
                 client_factory: Callable[[], Any] | None = None) -> None:
        self.secret_name = secret_name
        self._client_factory = client_factory or (lambda: aws_client("secretsmanager"))

    def load(self) -> dict[str, Any] | None:
        stored = self.load_versioned()
        return stored[0] if stored else None

    def load_versioned(self) -> tuple[dict[str, Any], str] | None:
        """The key set and the id of its version (for ``replace``), None if absent."""
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
        return parsed, str(out["VersionId"])

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

    def replace(self, keyset: dict[str, Any], based_on: str) -> str:
        """Store ``keyset`` as the successor of version ``based_on``; returns the new
        version's id. Raises KeySetChanged if another writer replaced ``based_on``
        first (the token derived from it is taken by a different version)."""
        from botocore.exceptions import BotoCoreError, ClientError

        token = str(uuid.uuid5(_VERSION_NAMESPACE, based_on))
        try:
            out = self._client_factory().put_secret_value(
                SecretId=self.secret_name, SecretString=json.dumps(keyset),
                ClientRequestToken=token)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceExistsException":
                raise KeySetChanged() from exc
            raise StorageUnavailable(detail=f"secretsmanager: {exc}") from exc
        except BotoCoreError as exc:
            raise StorageUnavailable(detail=f"secretsmanager: {exc}") from exc
        return str(out["VersionId"])
