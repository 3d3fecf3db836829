"""Flexible checksums of multipart uploads, as the staging keeps them (our extension, in metadata).

- the upload record: ``s4-mpu-checksum`` = ``<algorithm>:<type>`` (x-amz-checksum-algorithm/-type);
- a staged part: ``s4-part-checksum`` = ``<algorithm>:<base64>``, the checksum the client sent and
  the body verified, or the one the gateway computed (a FULL_OBJECT part sent without, a copied part);
- the completed object: its checksum as any object's (``ObjectAttributes.checksums``), and the parts'
  as ``s4-part-checksums`` = ``<algorithm>:<base64 of the concatenated digests>``, for GET/HEAD with
  ``partNumber`` and GetObjectAttributes. Like ``s4-part-sizes`` it must leave room in S3's 2 KB of
  metadata: past the budget it is left out, and those answers go without part checksums.

The checksums are of the original (client) bytes, never of the compressed frames.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import AsyncIterable, AsyncIterator, Mapping, Sequence

from s4.store.base import UploadChecksum
from s4.store.checksums import DIGEST_SIZES, TYPES_OF, decode, encode, new_digest

KEY_UPLOAD_CHECKSUM = "s4-mpu-checksum"
KEY_PART_CHECKSUM = "s4-part-checksum"
KEY_PART_CHECKSUMS = "s4-part-checksums"
MAX_ENCODED = 1024
"""Part sizes and part checksums together (``s4-part-sizes`` has the same budget on its own)."""


def upload_metadata(checksum: UploadChecksum | None) -> dict[str, str]:
    return {} if checksum is None else {KEY_UPLOAD_CHECKSUM: f"{checksum.algorithm}:{checksum.type}"}


def upload_checksum_of(metadata: Mapping[str, str]) -> UploadChecksum | None:
    """The upload's checksum from its record's (normalised) metadata; None when it has none."""
    algorithm, _, kind = metadata.get(KEY_UPLOAD_CHECKSUM, "").partition(":")
    return UploadChecksum(algorithm, kind) if kind in TYPES_OF.get(algorithm, ()) else None


def part_metadata(checksums: Mapping[str, str]) -> dict[str, str]:
    """A staged part's checksum (S3 allows one per request)."""
    for algorithm, value in checksums.items():
        if algorithm in DIGEST_SIZES:
            return {KEY_PART_CHECKSUM: f"{algorithm}:{value}"}
    return {}


def part_checksums_of(metadata: Mapping[str, str]) -> dict[str, str]:
    algorithm, _, value = metadata.get(KEY_PART_CHECKSUM, "").partition(":")
    return {algorithm: value} if algorithm in DIGEST_SIZES and decode(algorithm, value) is not None else {}


def encode_part_checksums(algorithm: str, values: Sequence[str], used: int = 0) -> str | None:
    """``s4-part-checksums`` for the object's parts; None past the budget (``used``: what the part
    sizes already take of it)."""
    digests = [decode(algorithm, v) for v in values]
    if not digests or any(d is None for d in digests):
        return None
    text = f"{algorithm}:{base64.b64encode(b''.join(d for d in digests if d is not None)).decode('ascii')}"
    return text if used + len(text) <= MAX_ENCODED else None


def decode_part_checksums(metadata: Mapping[str, str], algorithm: str, count: int) -> tuple[str, ...] | None:
    """The ``count`` part checksums of an object whose checksum is of ``algorithm``; None when absent or
    not exactly that (never an error: they only add to some answers)."""
    name, _, text = metadata.get(KEY_PART_CHECKSUMS, "").partition(":")
    size = DIGEST_SIZES.get(name)
    if name != algorithm or size is None or len(text) > MAX_ENCODED:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if count < 1 or len(raw) != size * count:
        return None
    return tuple(encode(raw[i : i + size]) for i in range(0, len(raw), size))


class ChecksummedBody:
    """A part body, digested as it streams: the part checksum the gateway computes itself.

    Keeps the body's own promises (``expected_size``, its verified ``checksums``) and adds the
    computed one to ``checksums`` once the body has ended.
    """

    def __init__(self, body: AsyncIterable[bytes], algorithm: str) -> None:
        self._body = body
        self._algorithm = algorithm
        self._digest = new_digest(algorithm)
        self.expected_size = getattr(body, "expected_size", None)
        self.checksums: dict[str, str] = {}

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        async for piece in self._body:
            self._digest.update(piece)
            yield piece
        self.checksums.update(getattr(self._body, "checksums", {}))
        self.checksums[self._algorithm] = encode(self._digest.digest())
