"""Names the S4 format keeps for itself inside a bucket (FORMAT.md section 6)."""

from __future__ import annotations

from s4.store.base import StoreError

SIDECAR_SUFFIX = ".s4index"
MULTIPART_PREFIX = ".s4mpu/"
DICTIONARY_PREFIX = ".s4dict/"


def is_reserved(key: str) -> bool:
    return key.endswith(SIDECAR_SUFFIX) or key.startswith((MULTIPART_PREFIX, DICTIONARY_PREFIX))


def refuse_reserved(key: str) -> None:
    """Clients may neither read nor write the gateway's own objects."""
    if is_reserved(key):
        raise StoreError(
            "AccessDenied",
            f"The key {key!r} is reserved by the gateway (*.s4index, .s4mpu/, .s4dict/)",
            resource=key,
        )


def reserved_prefix(prefix: str) -> bool:
    """A common prefix that only holds reserved objects."""
    return prefix.startswith((MULTIPART_PREFIX, DICTIONARY_PREFIX))
