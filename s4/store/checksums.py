"""S3's flexible checksums (CRC32, CRC32C, CRC64NVME, SHA1, SHA256) as stores keep them, multipart included.

A multipart upload created with ``x-amz-checksum-algorithm`` keeps one checksum per part, and
its object gets one of two kinds of checksum (``x-amz-checksum-type``):

- COMPOSITE: the algorithm over the concatenated binary checksums of the parts, written
  ``<base64>-<part count>`` (CRC32, CRC32C, SHA1, SHA256; the default but for CRC64NVME);
- FULL_OBJECT: the CRC of the whole object (CRC32, CRC32C, CRC64NVME; the only kind CRC64NVME
  has). A CRC is linear, so the object's follows from the parts' CRCs and sizes (``combine``)
  without reading a byte of the parts again, which a store that keeps its parts compressed
  could not do cheaply.

The digests run on awscrt (CRC32C, CRC64NVME: the CPU's CRC instructions; what botocore itself uses), zlib
(CRC32, faster than awscrt's) and hashlib.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import zlib
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from awscrt import checksums as crt

from s4.store.base import CompletionChecksums, PartInfo, StoreError, UploadChecksum

ALGORITHMS = ("crc32", "crc32c", "crc64nvme", "sha1", "sha256")
DIGEST_SIZES = {"crc32": 4, "crc32c": 4, "crc64nvme": 8, "sha1": 20, "sha256": 32}
COMPOSITE = "COMPOSITE"
FULL_OBJECT = "FULL_OBJECT"
TYPES_OF = {
    "crc32": (COMPOSITE, FULL_OBJECT),
    "crc32c": (COMPOSITE, FULL_OBJECT),
    "crc64nvme": (FULL_OBJECT,),
    "sha1": (COMPOSITE,),
    "sha256": (COMPOSITE,),
}
"""The checksum types S3 allows each algorithm, its default first."""
_PART_COUNT = re.compile(r"-[0-9]{1,5}\Z")


class Digest(Protocol):
    def update(self, data: bytes, /) -> None: ...
    def digest(self) -> bytes: ...


class _Crc:
    """A CRC function (awscrt's, zlib's) in the hashlib update/digest shape."""

    def __init__(self, function: Callable[[bytes, int], int], size: int) -> None:
        self._function = function
        self._size = size
        self._value = 0

    def update(self, data: bytes, /) -> None:
        self._value = self._function(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(self._size, "big")


def new_digest(algorithm: str) -> Digest:
    if algorithm == "crc32":
        # zlib's CRC32 (what boto3 sends by default) takes about 2/3 of awscrt's CPU per byte here (0.23
        # against 0.36 cpu-s/GB, 64 KiB to 4 MiB pieces, benchmarks/scale_bench.py's floor); same result.
        return _Crc(zlib.crc32, 4)
    if algorithm == "crc32c":
        return _Crc(crt.crc32c, 4)
    if algorithm == "crc64nvme":
        return _Crc(crt.crc64nvme, 8)
    if algorithm in ("sha1", "sha256"):
        return hashlib.new(algorithm)
    raise ValueError(f"unknown checksum algorithm {algorithm!r}")


def encode(digest: bytes) -> str:
    """S3's wire form of a checksum: base64 of the big-endian digest."""
    return base64.b64encode(digest).decode("ascii")


def decode(algorithm: str, value: str) -> bytes | None:
    """The digest a wire value stands for; None unless it is well-formed base64 of the algorithm's size."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == DIGEST_SIZES[algorithm] else None


# --- CRC arithmetic: combining the CRCs of two pieces without their bytes ----------------------------

_REFLECTED_POLYNOMIALS = {"crc32": (32, 0xEDB88320), "crc32c": (32, 0x82F63B78), "crc64nvme": (64, 0x9A6C9329AC4BC9B5)}
"""Width and bit-reflected generator polynomial of each CRC (all three are reflected, with an
all-ones initial value and final XOR, which is what makes ``combine`` this simple)."""


def _multiply(algorithm: str, a: int, b: int) -> int:
    """a(x)·b(x) modulo the CRC's polynomial, both in the CRC's reflected bit order."""
    width, polynomial = _REFLECTED_POLYNOMIALS[algorithm]
    product = 0
    bit = 1 << (width - 1)  # x^0
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ polynomial if b & 1 else b >> 1
    return product


@functools.cache
def _x_to_power_of_two(algorithm: str, k: int) -> int:
    """x^(2^k) modulo the polynomial."""
    width = _REFLECTED_POLYNOMIALS[algorithm][0]
    if k == 0:
        return 1 << (width - 2)  # x^1
    half = _x_to_power_of_two(algorithm, k - 1)
    return _multiply(algorithm, half, half)


@functools.lru_cache(maxsize=256)
def _shift(algorithm: str, length: int) -> int:
    """x^(8·length) modulo the polynomial: appending ``length`` zero bytes to a CRC's message.
    Cached: the parts of an upload mostly share one size."""
    width = _REFLECTED_POLYNOMIALS[algorithm][0]
    power = 1 << (width - 1)  # x^0
    k = 3  # 8 = 2^3 bits per byte
    while length:
        if length & 1:
            power = _multiply(algorithm, _x_to_power_of_two(algorithm, k), power)
        length >>= 1
        k += 1
    return power


def combine(algorithm: str, crc1: int, crc2: int, length2: int) -> int:
    """The CRC of A followed by B, from crc(A), crc(B) and len(B)."""
    if length2 == 0:
        return crc1
    return _multiply(algorithm, _shift(algorithm, length2), crc1) ^ crc2


# --- what an upload declares ---------------------------------------------------------------------------


def upload_checksum(algorithm: str | None, checksum_type: str | None) -> UploadChecksum | None:
    """The checksum a CreateMultipartUpload asks for (``x-amz-checksum-algorithm``, ``x-amz-checksum-type``),
    with S3's default type, or the InvalidRequest S3 answers."""
    if algorithm is None or not algorithm.strip():
        if checksum_type is not None:
            raise StoreError(
                "InvalidRequest",
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.",
            )
        return None
    name = algorithm.strip().lower()
    if name not in TYPES_OF:
        raise StoreError(
            "InvalidRequest",
            "Checksum algorithm provided is unsupported. Please try again with any of the valid types:"
            " [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]",
        )
    if checksum_type is None:
        return UploadChecksum(name, TYPES_OF[name][0])
    kind = checksum_type.strip().upper()
    if kind not in (COMPOSITE, FULL_OBJECT):
        raise StoreError("InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
    if kind not in TYPES_OF[name]:
        raise StoreError(
            "InvalidRequest", f"The {kind} checksum type cannot be used with the {name} checksum algorithm."
        )
    return UploadChecksum(name, kind)


def part_algorithm_to_compute(upload: UploadChecksum | None, declared: str | None) -> str | None:
    """Check an UploadPart's checksum against its upload's: InvalidRequest when it names another
    algorithm, or none for a COMPOSITE upload (whose object checksum needs every part's). Returns
    the algorithm the store computes itself: a FULL_OBJECT upload's, when the part came without."""
    if upload is None or declared == upload.algorithm:
        return None
    if declared is None and upload.type == FULL_OBJECT:
        return upload.algorithm
    raise StoreError(
        "InvalidRequest",
        f"Checksum Type mismatch occurred, expected checksum Type: {upload.algorithm},"
        f" actual checksum Type: {declared or 'null'}",
    )


# --- the object's checksum ------------------------------------------------------------------------------


def object_checksum(upload: UploadChecksum, parts: Sequence[tuple[str, int]]) -> str:
    """The object checksum of ``(part checksum, original part size)`` in part order."""
    digests = []
    for value, _ in parts:
        raw = decode(upload.algorithm, value)
        if raw is None:
            raise StoreError("InternalError", f"a stored part checksum is not a {upload.algorithm} value")
        digests.append(raw)
    if upload.type == COMPOSITE:
        digest = new_digest(upload.algorithm)
        digest.update(b"".join(digests))
        return f"{encode(digest.digest())}-{len(parts)}"
    crc = int.from_bytes(digests[0], "big")
    for raw, (_, size) in zip(digests[1:], parts[1:], strict=True):
        crc = combine(upload.algorithm, crc, int.from_bytes(raw, "big"), size)
    return encode(crc.to_bytes(DIGEST_SIZES[upload.algorithm], "big"))


def checksum_type(value: str) -> str:
    """COMPOSITE for a ``<base64>-<parts>`` value, FULL_OBJECT otherwise (every single PUT's)."""
    return COMPOSITE if _PART_COUNT.search(value) else FULL_OBJECT


def without_part_count(value: str) -> str:
    """A COMPOSITE value as GetObjectAttributes gives it: S3 leaves out the ``-<parts>`` there
    (ObjectParts tells the count), though Complete, GET and HEAD show it."""
    match = _PART_COUNT.search(value)
    return value[: match.start()] if match else value


def completed_checksum(
    upload: UploadChecksum | None,
    chosen: Sequence[PartInfo],
    listed: Mapping[int, Mapping[str, str]],
    request: CompletionChecksums | None,
) -> str | None:
    """The object checksum of a Complete, after the checks S3 makes; None for an upload without one.

    ``chosen`` are the parts being assembled (their stored checksums), ``listed`` the checksums the
    request gives for each part number. First what the request says of the object (type, algorithm,
    expected value: BadDigest when it differs), then each part: a part checksum that differs from the
    stored one is InvalidPart, one of another algorithm BadDigest, and a COMPOSITE upload needs the
    checksum of every part (InvalidRequest).
    """
    expected = dict(request.object) if request is not None else {}
    if upload is None:
        if any(listed.get(p.part_number) for p in chosen):
            raise _invalid_part()
        if expected:
            raise StoreError(
                "InvalidRequest",
                f"The upload was created without a checksum algorithm; x-amz-checksum-{next(iter(expected))}"
                " cannot be checked.",
            )
        return None
    if request is not None and request.type is not None and request.type.strip().upper() != upload.type:
        raise StoreError(
            "InvalidRequest",
            f"The upload was created using the {upload.type} checksum mode. The complete request must use the"
            " same checksum mode.",
        )
    missing = [p.part_number for p in chosen if upload.algorithm not in p.checksums]
    if missing:
        raise StoreError("InvalidPart", f"Part {missing[0]} was stored without a {upload.algorithm} checksum.")
    value = object_checksum(upload, [(p.checksums[upload.algorithm], p.size) for p in chosen])
    for algorithm, given in expected.items():
        if algorithm != upload.algorithm:
            raise StoreError(
                "InvalidRequest",
                f"The upload was created using a {upload.algorithm} checksum. The complete request must use the"
                " same checksum algorithm.",
            )
        if given.strip() not in (value, without_part_count(value)):
            raise StoreError(
                "BadDigest", f"The {upload.algorithm} you specified did not match the calculated checksum."
            )
    for part in chosen:
        given_checksums = listed.get(part.part_number) or {}
        given = given_checksums.get(upload.algorithm)
        if given is not None:
            if given.strip() != part.checksums[upload.algorithm]:
                raise _invalid_part()
            continue
        if given_checksums:
            raise StoreError(
                "BadDigest",
                f"The {next(iter(given_checksums))} you specified for part {part.part_number} did not match what we"
                " received.",
            )
        if upload.type == COMPOSITE:
            raise StoreError(
                "InvalidRequest",
                f"The upload was created using a {upload.algorithm} checksum. The complete request must include the"
                f" checksum for each part. It was missing for part {part.part_number} in the request.",
            )
    return value


def _invalid_part() -> StoreError:
    return StoreError(
        "InvalidPart",
        "One or more of the specified parts could not be found. The part may not have been uploaded,"
        " or the specified entity tag may not match the part's entity tag.",
    )


def not_kept() -> StoreError:
    """What a store that keeps no part checksums (the embedded and upstream stores, which the compressing
    store uses for its own bytes) answers a multipart upload with a checksum."""
    return StoreError(
        "NotImplemented", "This store keeps no multipart checksums; serve it through the compressing store."
    )
