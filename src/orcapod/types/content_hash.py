"""``ContentHash``: a digest tagged with the method (algorithm + version) that made it.

The method travels with the digest so that a future change of algorithm never silently
matches an old hash: ``arrow_v1:…`` and ``arrow_v2:…`` are simply different values.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from orcapod.errors import InputValidationError

__all__ = ["ContentHash"]


@dataclass(frozen=True, slots=True)
class ContentHash:
    method: str
    digest: bytes

    def __post_init__(self) -> None:
        if not self.method or ":" in self.method:
            raise InputValidationError(
                f"ContentHash method must be a non-empty name without ':', got {self.method!r}"
            )
        if not isinstance(self.digest, bytes) or not self.digest:
            raise InputValidationError("ContentHash digest must be non-empty bytes")

    def to_string(self) -> str:
        """``"<method>:<hex digest>"``."""
        return f"{self.method}:{self.digest.hex()}"

    @classmethod
    def from_string(cls, text: str) -> ContentHash:
        method, sep, hexdigest = text.partition(":")
        if not sep:
            raise InputValidationError(
                f"{text!r} is not a ContentHash string; expected '<method>:<hex digest>'"
            )
        try:
            digest = bytes.fromhex(hexdigest)
        except ValueError as err:
            raise InputValidationError(f"{text!r}: the digest part is not hexadecimal") from err
        return cls(method, digest)

    def to_hex(self, n: int | None = None) -> str:
        """Hex digest, truncated to ``n`` characters when given."""
        text = self.digest.hex()
        return text if n is None else text[:n]

    def to_int(self) -> int:
        return int.from_bytes(self.digest, "big")

    def to_uuid(self) -> uuid.UUID:
        """A UUID made from the first 16 bytes of the digest (zero-padded if shorter)."""
        return uuid.UUID(bytes=self.digest[:16].ljust(16, b"\0"))

    def display_name(self, n: int = 8) -> str:
        return f"{self.method}:{self.to_hex(n)}"

    def __str__(self) -> str:
        return self.to_string()
