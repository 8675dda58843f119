"""Per-stage settings, read once from the environment.

``.chalice/config.json`` sets these as stage environment variables; the local
runner and the tests set them in the process environment. Every number SPEC.md
marks *default* lives here and nowhere else.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

# Named API sets of the PAT catalog (SPEC §5). A stage may replace it with
# TESSERA_API_SETS='{"name": ["scope", ...], ...}'.
DEFAULT_API_SETS: dict[str, tuple[str, ...]] = {
    "extended-access": ("profile", "email", "tokens:read", "tokens:manage", "api:read", "api:write"),
    "ide-plugins": ("profile", "api:read"),
    "marketplace": ("profile", "email", "api:read"),
}

# Every scope the service knows. Clients and users are limited to subsets.
DEFAULT_SCOPES: tuple[str, ...] = (
    "openid", "profile", "email", "offline_access",
    "tokens:read", "tokens:manage", "roles:manage", "sessions:manage", "api:read", "api:write",
    "users:invite",
)


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"setting {name} must be an integer, got {raw!r}") from exc


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"setting {name} must be a boolean, got {raw!r}")


def _local_only(env: Mapping[str, str], name: str) -> bool:
    """A boolean that may be on only outside Lambda (the local runner, the tests):
    a deployed stage that turns it on fails to start rather than run with it."""
    on = _bool(env, name, False)
    if on and env.get("AWS_LAMBDA_FUNCTION_NAME"):
        raise ValueError(f"setting {name} is for the local stage only; it cannot be on in "
                         "a deployed function")
    return on


# The least scrypt work factor (log2 of N) a deployed stage may hash passwords at:
# 2^15, 32 MiB and ~50 ms on one core (security/passwords.py says why this size).
SCRYPT_LOG_N_FLOOR = 15


def _scrypt_log_n(env: Mapping[str, str], stage: str) -> int:
    """TESSERA_SCRYPT_LOG_N: at least the floor in a deployed function or any stage
    but the local runner's; lower (cheaper hashes) only for the tests and ``local``.
    A deployed stage set below it fails to start rather than hash weakly."""
    log_n = _int(env, "TESSERA_SCRYPT_LOG_N", SCRYPT_LOG_N_FLOOR)
    if not 1 <= log_n <= 20:   # 2^20 takes 1 GiB, twice the function's memory
        raise ValueError(f"setting TESSERA_SCRYPT_LOG_N must be from 1 to 20, got {log_n}")
    if log_n < SCRYPT_LOG_N_FLOOR and (env.get("AWS_LAMBDA_FUNCTION_NAME") or stage != "local"):
        raise ValueError(f"setting TESSERA_SCRYPT_LOG_N is {log_n}, below the production floor "
                         f"{SCRYPT_LOG_N_FLOOR}; only the local stage may lower it")
    return log_n


def _api_sets(env: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    raw = env.get("TESSERA_API_SETS", "")
    if not raw:
        return dict(DEFAULT_API_SETS)
    import json

    parsed = json.loads(raw)
    return {str(k): tuple(str(s) for s in v) for k, v in parsed.items()}


# The purge index (sessions ``by_idle``) is keyed by shard and sorted by idle
# deadline, which every refresh moves: DynamoDB writes the index twice per refresh
# (remove the old entry, add the new one). One partition key value takes at most
# 1000 write units a second, and a growing sort key leaves adaptive capacity no
# hot range to split, so each shard carries at most 500 refreshes a second.
INDEX_PARTITION_WRITES_PER_SECOND = 1000
INDEX_WRITES_PER_REFRESH = 2
INDEX_TARGET_UTILISATION = 0.8


def purge_shards_for(refreshes_per_second: int) -> int:
    """Shards the purge index needs to take ``refreshes_per_second`` at 80 % of its ceiling."""
    per_shard = INDEX_PARTITION_WRITES_PER_SECOND * INDEX_TARGET_UTILISATION / INDEX_WRITES_PER_REFRESH
    return max(1, math.ceil(refreshes_per_second / per_shard))


@dataclass(frozen=True)
class Settings:
    stage: str = "dev"
    # Issuer URL. Empty: derived from the request (https://host/stage).
    issuer: str = ""
    # Audience of access tokens (RFC 9068 §2.2 "aud"). Empty: the issuer.
    audience: str = ""
    table_prefix: str = "tessera-dev-"
    keys_secret_name: str = "tessera-dev/signing-keys"

    session_max_seconds: int = 24 * 3600
    session_idle_seconds: int = 10 * 3600
    access_token_seconds: int = 300
    # Access tokens of the client credentials grant (RFC 6749 §4.4): no refresh
    # token comes with them, so they live longer than a session's.
    client_token_seconds: int = 3600
    # Role tokens (role key client_credentials, federation), SPEC §6: 1 h.
    role_token_seconds: int = 3600
    refresh_grace_seconds: int = 30
    # Refreshes one session may make (one every 43 s for 24 h); bounds the item size.
    session_max_rotations: int = 2000
    # Live sessions one user may hold: a sign-in beyond it ends the oldest-created
    # one. Bounds the user item's sessions map (each sign-in records one entry).
    max_sessions_per_user: int = 100

    device_code_seconds: int = 300
    device_poll_interval: int = 5

    purge_rate_minutes: int = 15
    # Partition values of the purge index; at least ``purge_shards_for(peak)``.
    purge_shards: int = 8
    # Refreshes per second the stage must sustain at peak: sizes the purge index.
    peak_refreshes_per_second: int = 3000

    signing_alg: str = "ES256"
    # A retired key stays in the JWKS this long after it stopped signing: longer
    # than the longest-lived JWT it can have signed.
    key_retire_seconds: int = 2 * 3600
    # How long an instance trusts its cached key set before re-reading it.
    key_cache_seconds: int = 3600
    # The daily rotation job rotates once the current key is this old.
    key_rotation_days: int = 30

    login_max_failures: int = 5          # then every answer is slowed down
    login_lockout_failures: int = 10     # then the user/source is locked out
    login_lockout_seconds: int = 900
    login_window_seconds: int = 900
    # Wrong user codes on /device per window (login_window_seconds) before a 429:
    # per source, per signed-in user and per issued code, and over all callers.
    user_code_max_misses: int = 5
    user_code_global_misses: int = 1000

    pat_max_lifetime_days: int = 366     # 0 = no maximum
    pat_allow_no_expiry: bool = False
    pat_query_param: bool = True
    pat_last_used_resolution: int = 600
    recent_signin_seconds: int = 600
    # The security log's retention (SPEC §11).
    events_ttl_days: int = 90
    # SPEC §11: a second factor for everyone; who has none may still sign in for
    # the grace period (counted from their first sign-in after it was required),
    # and is asked to enrol; after it, a sign-in can only enrol one.
    require_mfa: bool = False
    mfa_grace_days: int = 14
    # scrypt work factor of new password hashes, log2 of N (security/passwords.py).
    # Tests lower it; ``from_env`` refuses less than the floor outside ``local``.
    scrypt_log_n: int = SCRYPT_LOG_N_FLOOR

    # Roles (SPEC §6): how many a user may own, and entries per role.
    max_roles_per_user: int = 50
    max_policies_per_role: int = 50
    max_keys_per_role: int = 10
    max_trust_per_role: int = 20

    scopes: tuple[str, ...] = DEFAULT_SCOPES
    api_sets: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_API_SETS), hash=False)

    max_body_bytes: int = 16 * 1024

    # DynamoDB client: one attempt takes at most connect + read timeout; botocore's
    # standard retries make at most ``dynamodb_max_attempts`` in all (first included).
    dynamodb_connect_timeout_ms: int = 1000
    dynamodb_read_timeout_ms: int = 2000
    dynamodb_max_attempts: int = 3
    # Time kept back from the invocation's deadline to render a 503 and return.
    deadline_reserve_ms: int = 1000

    # CI federation (SPEC §6): an issuer's discovery and JWKS are fetched over
    # HTTPS from public addresses only; loopback issuers (127.0.0.0/8, ::1,
    # localhost), over HTTP or HTTPS, only where this is on: the local runner and
    # the tests. ``from_env`` refuses it inside Lambda (a deployed stage). Trust
    # policies accept a loopback issuer under the same rule.
    federation_allow_http: bool = False
    # The longest job token accepted (exp - iat, seconds): a leaked token must
    # not stay usable for long. GitHub's live minutes; GitLab's the job timeout.
    federation_max_token_seconds: int = 3600
    # How long an instance keeps an issuer's keys, and how long it remembers a
    # failed fetch (so a flood of bad tokens does not hammer the issuer; also the
    # least time between two refetches for a key id it does not know).
    federation_jwks_cache_seconds: int = 600
    federation_negative_cache_seconds: int = 30
    # One HTTP request to an issuer: at most this long (and never past the
    # invocation's deadline), at most this many bytes.
    federation_fetch_timeout_ms: int = 3000
    federation_max_document_bytes: int = 64 * 1024

    # Mail (SPEC §11): the sender of every mail, an address (or ``Name <address>``)
    # whose address or domain is a verified SES identity. Empty: no mail is sent.
    mail_from: str = ""

    def table(self, kind: str) -> str:
        """Physical name of one of the tables of ``storage.schema`` for this stage."""
        return self.table_prefix + kind

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        e = os.environ if env is None else env
        stage = e.get("TESSERA_STAGE", "dev")
        return cls(
            stage=stage,
            issuer=e.get("TESSERA_ISSUER", "").rstrip("/"),
            audience=e.get("TESSERA_AUDIENCE", ""),
            table_prefix=e.get("TESSERA_TABLE_PREFIX", f"tessera-{stage}-"),
            keys_secret_name=e.get("TESSERA_KEYS_SECRET", f"tessera-{stage}/signing-keys"),
            session_max_seconds=_int(e, "TESSERA_SESSION_MAX_SECONDS", 24 * 3600),
            session_idle_seconds=_int(e, "TESSERA_SESSION_IDLE_SECONDS", 10 * 3600),
            access_token_seconds=_int(e, "TESSERA_ACCESS_TOKEN_SECONDS", 300),
            client_token_seconds=_int(e, "TESSERA_CLIENT_TOKEN_SECONDS", 3600),
            role_token_seconds=_int(e, "TESSERA_ROLE_TOKEN_SECONDS", 3600),
            refresh_grace_seconds=_int(e, "TESSERA_REFRESH_GRACE_SECONDS", 30),
            session_max_rotations=_int(e, "TESSERA_SESSION_MAX_ROTATIONS", 2000),
            max_sessions_per_user=_int(e, "TESSERA_MAX_SESSIONS_PER_USER", 100),
            device_code_seconds=_int(e, "TESSERA_DEVICE_CODE_SECONDS", 300),
            device_poll_interval=_int(e, "TESSERA_DEVICE_POLL_INTERVAL", 5),
            purge_rate_minutes=_int(e, "TESSERA_PURGE_RATE_MINUTES", 15),
            purge_shards=max(_int(e, "TESSERA_PURGE_SHARDS", 8), purge_shards_for(
                _int(e, "TESSERA_PEAK_REFRESHES_PER_SECOND", 3000))),
            peak_refreshes_per_second=_int(e, "TESSERA_PEAK_REFRESHES_PER_SECOND", 3000),
            signing_alg=e.get("TESSERA_SIGNING_ALG", "ES256"),
            key_retire_seconds=_int(e, "TESSERA_KEY_RETIRE_SECONDS", 2 * 3600),
            key_cache_seconds=_int(e, "TESSERA_KEY_CACHE_SECONDS", 3600),
            key_rotation_days=_int(e, "TESSERA_KEY_ROTATION_DAYS", 30),
            login_max_failures=_int(e, "TESSERA_LOGIN_MAX_FAILURES", 5),
            login_lockout_failures=_int(e, "TESSERA_LOGIN_LOCKOUT_FAILURES", 10),
            login_lockout_seconds=_int(e, "TESSERA_LOGIN_LOCKOUT_SECONDS", 900),
            login_window_seconds=_int(e, "TESSERA_LOGIN_WINDOW_SECONDS", 900),
            user_code_max_misses=_int(e, "TESSERA_USER_CODE_MAX_MISSES", 5),
            user_code_global_misses=_int(e, "TESSERA_USER_CODE_GLOBAL_MISSES", 1000),
            pat_max_lifetime_days=_int(e, "TESSERA_PAT_MAX_LIFETIME_DAYS", 366),
            pat_allow_no_expiry=_bool(e, "TESSERA_PAT_ALLOW_NO_EXPIRY", False),
            pat_query_param=_bool(e, "TESSERA_PAT_QUERY_PARAM", True),
            recent_signin_seconds=_int(e, "TESSERA_RECENT_SIGNIN_SECONDS", 600),
            events_ttl_days=_int(e, "TESSERA_EVENTS_TTL_DAYS", 90),
            require_mfa=_bool(e, "TESSERA_REQUIRE_MFA", False),
            mfa_grace_days=_int(e, "TESSERA_MFA_GRACE_DAYS", 14),
            scrypt_log_n=_scrypt_log_n(e, stage),
            max_roles_per_user=_int(e, "TESSERA_MAX_ROLES_PER_USER", 50),
            max_policies_per_role=_int(e, "TESSERA_MAX_POLICIES_PER_ROLE", 50),
            max_keys_per_role=_int(e, "TESSERA_MAX_KEYS_PER_ROLE", 10),
            max_trust_per_role=_int(e, "TESSERA_MAX_TRUST_PER_ROLE", 20),
            api_sets=_api_sets(e),
            dynamodb_connect_timeout_ms=_int(e, "TESSERA_DYNAMODB_CONNECT_TIMEOUT_MS", 1000),
            dynamodb_read_timeout_ms=_int(e, "TESSERA_DYNAMODB_READ_TIMEOUT_MS", 2000),
            dynamodb_max_attempts=_int(e, "TESSERA_DYNAMODB_MAX_ATTEMPTS", 3),
            deadline_reserve_ms=_int(e, "TESSERA_DEADLINE_RESERVE_MS", 1000),
            federation_allow_http=_local_only(e, "TESSERA_FEDERATION_ALLOW_HTTP"),
            federation_max_token_seconds=_int(e, "TESSERA_FEDERATION_MAX_TOKEN_SECONDS", 3600),
            federation_jwks_cache_seconds=_int(e, "TESSERA_FEDERATION_JWKS_CACHE_SECONDS", 600),
            federation_negative_cache_seconds=_int(e, "TESSERA_FEDERATION_NEGATIVE_CACHE_SECONDS",
                                                   30),
            federation_fetch_timeout_ms=_int(e, "TESSERA_FEDERATION_FETCH_TIMEOUT_MS", 3000),
            federation_max_document_bytes=_int(e, "TESSERA_FEDERATION_MAX_DOCUMENT_BYTES",
                                               64 * 1024),
            mail_from=e.get("TESSERA_MAIL_FROM", "").strip(),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The settings of this process's stage, read once."""
    return Settings.from_env()
