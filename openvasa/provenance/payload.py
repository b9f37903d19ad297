"""The 64 bits every openvasa frame carries: a fixed mark, the version and an optional key.

    bits  0-15  MAGIC, the openvasa mark (also what the detector locks on to)
    bits 16-23  version: major (high 4 bits) and minor (low 4 bits), each mod 16
    bits 24-47  key id: 24 bits of SHA-256 of a user's key text, 0 when no key was given
    bits 48-63  CRC-16/CCITT of bits 0-47, so that a misread payload is recognised as such

Bits travel as ±1 (bit 1 → +1), most significant bit first within each field.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

N_BITS = 64
N_MAGIC_BITS = 16
MAGIC = 0xB5A3  # balanced: 9 ones, 7 zeros, no long runs
KEY_BITS = 24


def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial value 0xFFFF)."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def key_id(key: str | None) -> int:
    """The 24-bit id that a user's key text is carried as (0 means "no key")."""
    if not key:
        return 0
    digest = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:3], "big")
    return digest or 1


def _version_byte(version: str) -> int:
    parts = [int(p) if p.isdigit() else 0 for p in version.split(".")[:2]]
    major, minor = (parts + [0, 0])[:2]
    return (major % 16) << 4 | (minor % 16)


@dataclass(frozen=True)
class Payload:
    """What a watermark says: which openvasa version made the frame and with which key id."""

    version_major: int
    version_minor: int
    key_id: int = 0

    @classmethod
    def for_version(cls, version: str, key: str | None = None) -> Payload:
        """The payload for openvasa `version` ("0.1.0") and an optional key text."""
        byte = _version_byte(version)
        return cls(byte >> 4, byte & 15, key_id(key))

    @property
    def version(self) -> str:
        return f"{self.version_major}.{self.version_minor}"

    def _head(self) -> bytes:
        byte = (self.version_major % 16) << 4 | (self.version_minor % 16)
        return MAGIC.to_bytes(2, "big") + bytes([byte]) + self.key_id.to_bytes(3, "big")

    def to_bits(self) -> np.ndarray:
        """The 64 payload bits as float32 ±1, shape (64,)."""
        if not 0 <= self.key_id < 1 << KEY_BITS:
            raise ValueError(f"key id must fit in {KEY_BITS} bits, got {self.key_id}")
        head = self._head()
        word = head + _crc16(head).to_bytes(2, "big")
        bits = np.unpackbits(np.frombuffer(word, np.uint8))
        return np.where(bits > 0, 1.0, -1.0).astype(np.float32)

    @classmethod
    def from_bits(cls, bits: np.ndarray) -> Payload | None:
        """Read 64 hard or soft bits (sign is the bit); None unless mark and CRC both check."""
        bits = np.asarray(bits).reshape(-1)
        if bits.size != N_BITS:
            raise ValueError(f"need {N_BITS} bits, got {bits.size}")
        word = np.packbits((bits > 0).astype(np.uint8)).tobytes()
        head, crc = word[:6], int.from_bytes(word[6:], "big")
        if int.from_bytes(head[:2], "big") != MAGIC or _crc16(head) != crc:
            return None
        return cls(head[2] >> 4, head[2] & 15, int.from_bytes(head[3:6], "big"))


def magic_bits() -> np.ndarray:
    """The fixed mark as ±1, shape (16,): the same in every openvasa payload."""
    bits = np.unpackbits(np.frombuffer(MAGIC.to_bytes(2, "big"), np.uint8))
    return np.where(bits > 0, 1.0, -1.0).astype(np.float32)
