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
_LAST_CHARACTER = "\U0010ffff"
"""The highest code point: sorts after every other character (in UTF-8 byte order too)."""


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


def may_hold_only_reserved(prefix: str) -> bool:
    """A common prefix that reserved objects may fall under while no client key does: one that stops
    inside a reserved prefix (``.``, ``.s4`` for ``.s4bucket/...``) or inside the sidecar suffix
    (``data.`` for ``data.s4index`` beside ``data``). A delimiter such as ``.`` rolls those up; whether
    a client key is there too only a listing tells."""
    if any(reserved.startswith(prefix) for reserved in _PREFIXES):
        return True
    return any(prefix.endswith(SIDECAR_SUFFIX[:end]) for end in range(1, len(SIDECAR_SUFFIX) + 1))


def past_reserved_range(key: str) -> str:
    """Where a listing that met the reserved ``key`` may go on from: past every key of its reserved
    prefix (they sort together), or just past ``key`` (a sidecar; a key beyond that bound)."""
    reserved = next((r for r in _PREFIXES if key.startswith(r)), None)
    return key if reserved is None else max(key, reserved + _LAST_CHARACTER)
