"""Opaque secrets: type prefix, random base62 body, CRC32 checksum (SPEC §4).

Layout of every opaque token::

    <prefix><locator><secret><checksum>

* ``prefix``   names the kind (``tsp_`` PAT, ``tsr_`` refresh, ``tsk_`` role key,
  ``tsd_`` device code, ``tsc_`` authorization code, ``tsb_`` browser sign-in),
  so secret scanners can find them;
* ``locator``  a fixed-length base62 field naming the item to read (empty for kinds
  whose item is keyed by the token's hash), so validation is one keyed read;
* ``secret``   22 base62 characters from ``secrets.token_bytes(16)`` (128 bits);
* ``checksum`` 6 base62 characters of CRC32 over everything before it, so a
  malformed or mistyped token is rejected before any database read (the same
  idea as GitHub's token format).

Only ``digest(token)`` is ever stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib
from dataclasses import dataclass

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_CHARSET = frozenset(ALPHABET)
# Two digits per division: every minted token, id and checksum goes through b62encode.
_PAIRS = tuple(a + b for a in ALPHABET for b in ALPHABET)
SECRET_LEN = 22      # ceil(128 / log2(62))
CHECKSUM_LEN = 6     # 62**6 > 2**32
ID_LEN = 16          # ids and locators: ~95 bits, unguessable but not secret


def b62encode(value: int, width: int) -> str:
    """``value`` as exactly ``width`` base62 digits, most significant first."""
    out = []
    for _ in range(width // 2):
        value, rem = divmod(value, 3844)        # 62 ** 2
        out.append(_PAIRS[rem])
    if width % 2:
        value, rem = divmod(value, 62)
        out.append(ALPHABET[rem])
    if value:
        raise ValueError("value does not fit the width")
    return "".join(reversed(out))


def b62decode(text: str) -> int:
    value = 0
    for c in text:
        value = value * 62 + _INDEX[c]
    return value


def is_base62(text: str) -> bool:
    return _CHARSET.issuperset(text)


def random_b62(length: int) -> str:
    """``length`` uniformly random base62 characters: one draw below 62**length
    (one read of the OS's generator, not one per character)."""
    return b62encode(secrets.randbelow(62 ** length), length)


def new_id() -> str:
    """A random identifier (not a secret)."""
    return random_b62(ID_LEN)


def checksum(payload: str) -> str:
    return b62encode(zlib.crc32(payload.encode("ascii")) & 0xFFFFFFFF, CHECKSUM_LEN)


def digest(token: str) -> str:
    """What is stored instead of a secret: SHA-256, hex.

    A fast hash is right here: the input carries 128 random bits, so there is
    nothing to brute-force (unlike a password).
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a.encode("ascii", "replace"), b.encode("ascii", "replace"))


@dataclass(frozen=True)
class TokenKind:
    prefix: str
    locator_len: int = 0

    @property
    def length(self) -> int:
        return len(self.prefix) + self.locator_len + SECRET_LEN + CHECKSUM_LEN

    def mint(self, locator: str = "") -> str:
        if len(locator) != self.locator_len or not is_base62(locator):
            raise ValueError("locator has the wrong shape")
        body = self.prefix + locator + random_b62(SECRET_LEN)
        return body + checksum(body)

    def parse(self, token: str) -> str | None:
        """The locator of a well-formed token of this kind, else None.

        No database is consulted: wrong prefix, length, alphabet or checksum
        all fail here.
        """
        if len(token) != self.length or not token.startswith(self.prefix):
            return None
        rest = token[len(self.prefix):]
        if not is_base62(rest):
            return None
        body, check = token[:-CHECKSUM_LEN], token[-CHECKSUM_LEN:]
        if not hmac.compare_digest(checksum(body), check):
            return None
        return rest[: self.locator_len]

    def matches(self, token: str) -> bool:
        return self.parse(token) is not None


# A PAT names its owner and its id, so that validating it reads both the token
# and its owner in one round trip (SPEC §9).
PAT = TokenKind("tsp_", locator_len=2 * ID_LEN)
# A refresh token names its session: rotation is one conditional write on it.
REFRESH = TokenKind("tsr_", locator_len=ID_LEN)
# Device codes are keyed by their digest; nothing to locate.
DEVICE_CODE = TokenKind("tsd_")
# Authorization codes (RFC 6749 §4.1.2) likewise, in the devices table.
AUTHORIZATION_CODE = TokenKind("tsc_")
# Role-key secrets name the role's owner and the role (``storage.roles``): validating
# a key reads the role and its owner in one round trip (SPEC §9).
ROLE_KEY_SECRET = TokenKind("tsk_", locator_len=2 * ID_LEN)
# The public half of a role key: ``tka_`` + 16 base62 characters (SPEC §4), not a
# secret, so it carries no checksum; the secret's checksum is checked before any read.
ROLE_KEY_ACCESS_PREFIX = "tka_"


def new_role_key_access_id() -> str:
    return ROLE_KEY_ACCESS_PREFIX + new_id()


def looks_like_role_key(token: str) -> bool:
    """Whether a presented token claims to be a role key ``tka_…:tsk_…`` (its parts
    are checked, without a read, by ``services.role_credentials.split_key``)."""
    return token.startswith(ROLE_KEY_ACCESS_PREFIX)


def is_role_key_access_id(text: str) -> bool:
    body = text[len(ROLE_KEY_ACCESS_PREFIX):]
    return (text.startswith(ROLE_KEY_ACCESS_PREFIX) and len(body) == ID_LEN
            and is_base62(body))
# The single-use links mailed to people (SPEC §11), keyed by their digest.
INVITATION = TokenKind("tsi_")
PASSWORD_RESET = TokenKind("tsw_")
EMAIL_CHANGE = TokenKind("tse_")
# Browser sign-in cookie of the web pages; names its session. (``tsw_``, ``tsi_``
# and ``tse_`` are the password-reset, invitation and email-change links of SPEC §11.)
WEB_SESSION = TokenKind("tsb_", locator_len=ID_LEN)
