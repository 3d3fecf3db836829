"""Names the S4 format keeps for itself inside a bucket (FORMAT.md section 6)."""

from __future__ import annotations

from s4.store.base import StoreError

SIDECAR_SUFFIX = ".s4index"
MULTIPART_PREFIX = ".s4mpu/"
DICTIONARY_PREFIX = ".s4dict/"
BUCKET_DOCUMENT_PREFIX = ".s4bucket/"
"""Where a store with nowhere else to put them keeps a bucket's documents (CORS, lifecycle, policy...):
the upstream S3 store writes ``.s4bucket/<name>`` in the bucket (s4.store.s3.documents)."""
_PREFIXES = (MULTIPART_PREFIX, DICTIONARY_PREFIX, BUCKET_DOCUMENT_PREFIX)


def is_reserved(key: str) -> bool:
    return key.endswith(SIDECAR_SUFFIX) or key.startswith(_PREFIXES)


def refuse_reserved(key: str) -> None:
    """Clients may neither read nor write the gateway's own objects."""
    if is_reserved(key):
        raise StoreError(
            "AccessDenied",
            f"The key {key!r} is reserved by the gateway (*.s4index, .s4mpu/, .s4dict/, .s4bucket/)",
            resource=key,
        )


def reserved_prefix(prefix: str) -> bool:
    """A common prefix that only holds reserved objects."""
    return prefix.startswith(_PREFIXES)
