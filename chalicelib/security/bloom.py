"""A Bloom filter (Bloom 1970) read from a file shipped with the code: "is this
string in the set?" with no false negatives and a known false-positive rate,
in a few dozen kilobytes instead of the set itself.

File layout: ``TBF1`` magic, k (1 byte), m in bits (4 bytes, big-endian), then
the m bits. Bit positions of a string are k values of the double hashing of
Kirsch and Mitzenmacher (2006) over SHA-256: ``h1 + i*h2 mod m``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable

MAGIC = b"TBF1"


def _positions(text: str, k: int, m: int) -> list[int]:
    d = hashlib.sha256(text.encode("utf-8")).digest()
    h1, h2 = int.from_bytes(d[:8], "big"), int.from_bytes(d[8:16], "big") | 1
    return [(h1 + i * h2) % m for i in range(k)]


class BloomFilter:
    def __init__(self, k: int, bits: bytearray) -> None:
        self.k = k
        self.m = len(bits) * 8
        self.bits = bits

    @classmethod
    def sized(cls, n: int, false_positive_rate: float) -> BloomFilter:
        m = math.ceil(-n * math.log(false_positive_rate) / math.log(2) ** 2)
        m = (m + 7) // 8 * 8
        k = max(1, round(m / n * math.log(2)))
        return cls(k, bytearray(m // 8))

    @classmethod
    def of(cls, items: Iterable[str], false_positive_rate: float) -> BloomFilter:
        listed = sorted(set(items))
        made = cls.sized(len(listed), false_positive_rate)
        for item in listed:
            made.add(item)
        return made

    @classmethod
    def from_bytes(cls, data: bytes) -> BloomFilter:
        if data[:4] != MAGIC:
            raise ValueError("not a Bloom filter file")
        k, m = data[4], int.from_bytes(data[5:9], "big")
        bits = bytearray(data[9:])
        if len(bits) * 8 != m:
            raise ValueError("Bloom filter file is truncated")
        return cls(k, bits)

    def to_bytes(self) -> bytes:
        return MAGIC + bytes([self.k]) + self.m.to_bytes(4, "big") + bytes(self.bits)

    def add(self, text: str) -> None:
        for p in _positions(text, self.k, self.m):
            self.bits[p >> 3] |= 1 << (p & 7)

    def __contains__(self, text: str) -> bool:
        return all(self.bits[p >> 3] & (1 << (p & 7)) for p in _positions(text, self.k, self.m))
