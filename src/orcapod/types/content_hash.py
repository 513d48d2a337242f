"""``ContentHash``: a digest tagged with the method (algorithm + version) that made it.

The method travels with the digest so that a future change of algorithm never silently
matches an old hash: ``arrow_v1:…`` and ``arrow_v2:…`` are simply different values.
"""

from __future__ import annotations

import base64
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

    def to_string(self, prefix_method: bool = True, hexdigits: int | None = None) -> str:
        """``"<method>:<hex digest>"``; only the hex part without ``prefix_method``, and
        the hex truncated to ``hexdigits`` characters when given."""
        text = self.to_hex(hexdigits)
        return f"{self.method}:{text}" if prefix_method else text

    @classmethod
    def from_string(cls, hash_string: str) -> ContentHash:
        method, sep, hexdigest = hash_string.partition(":")
        if not sep:
            raise InputValidationError(
                f"{hash_string!r} is not a ContentHash string; expected '<method>:<hex digest>'"
            )
        try:
            digest = bytes.fromhex(hexdigest)
        except ValueError as err:
            raise InputValidationError(
                f"{hash_string!r}: the digest part is not hexadecimal"
            ) from err
        return cls(method, digest)

    def to_hex(self, char_count: int | None = None) -> str:
        """Hex digest, truncated to ``char_count`` characters when given."""
        text = self.digest.hex()
        return text if char_count is None else text[:char_count]

    def to_int(self, hexdigits: int | None = None) -> int:
        """The digest as a big-endian integer (of its first ``hexdigits`` hex digits)."""
        if hexdigits is None:
            return int.from_bytes(self.digest, "big")
        return int(self.to_hex(hexdigits) or "0", 16)

    def to_base64(self) -> str:
        """The digest in standard base64 (without the method)."""
        return base64.b64encode(self.digest).decode("ascii")

    def to_prefixed_digest(self) -> bytes:
        """``b"<method>:"`` followed by the raw digest bytes."""
        return self.method.encode("utf-8") + b":" + self.digest

    def to_uuid(self, namespace: uuid.UUID | None = None) -> uuid.UUID:
        """A UUID made from the first 16 bytes of the digest (zero-padded if shorter); with
        ``namespace``, the name-based ``uuid5(namespace, <hex digest>)`` instead."""
        if namespace is not None:
            return uuid.uuid5(namespace, self.to_hex())
        return uuid.UUID(bytes=self.digest[:16].ljust(16, b"\0"))

    def display_name(self, length: int = 8) -> str:
        """Short form for logs and reprs: ``"<method>:<first length hex digits>"``."""
        return f"{self.method}:{self.to_hex(length)}"

    def __str__(self) -> str:
        return self.to_string()
