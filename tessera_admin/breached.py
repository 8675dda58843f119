"""Build ``chalicelib/security/data/breached.bloom``, the breached-password list
the service checks new passwords against (``chalicelib.security.password_rules``).

The source is the list of 30,000 most common passwords from breaches in the
``zxcvbn`` package (a development dependency, pinned), lower-cased; the filter
has a false-positive rate of 1 in 1,000. Run ``python -m tessera_admin.breached``
after changing the pin; a test checks the committed file is what this builds.
"""

from __future__ import annotations

import sys

from chalicelib.security.bloom import BloomFilter
from chalicelib.security.password_rules import BREACHED

FALSE_POSITIVE_RATE = 0.001


def source() -> list[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return [p.lower() for p in FREQUENCY_LISTS["passwords"]]


def build() -> bytes:
    return BloomFilter.of(source(), FALSE_POSITIVE_RATE).to_bytes()


def main() -> int:
    BREACHED.write_bytes(build())
    print(f"wrote {BREACHED} ({BREACHED.stat().st_size} bytes)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
