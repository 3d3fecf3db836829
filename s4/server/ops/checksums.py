"""How S3 shows flexible checksums: response headers and XML elements, and what a request says of an
object's checksum outside its body (CompleteMultipartUpload's ``x-amz-checksum-<algorithm>``)."""

from __future__ import annotations

from collections.abc import Mapping

from s4.server.body.checksums import CHECKSUM_HEADER_PREFIX
from s4.server.xml import element
from s4.store.base import UploadChecksum
from s4.store.checksums import checksum_type

_NOT_VALUES = frozenset(("x-amz-checksum-algorithm", "x-amz-checksum-type", "x-amz-checksum-mode"))


def element_name(algorithm: str) -> str:
    """``sha256`` -> ``ChecksumSHA256``: the element (and SDK member) S3 names it by."""
    return "Checksum" + algorithm.upper()


def kind_of(checksums: Mapping[str, str]) -> str | None:
    """An object's checksum type (COMPOSITE, FULL_OBJECT), told by its value; None without a checksum."""
    return checksum_type(next(iter(checksums.values()))) if checksums else None


def checksum_elements(checksums: Mapping[str, str], kind: str | None = None) -> str:
    """``<ChecksumSHA256>…</ChecksumSHA256>`` per checksum, then ``<ChecksumType>`` when ``kind`` is given."""
    parts = [element(element_name(a), v) for a, v in checksums.items()]
    if kind is not None and checksums:
        parts.append(element("ChecksumType", kind))
    return "".join(parts)


def checksum_headers(checksums: Mapping[str, str], kind: str | None = None) -> dict[str, str]:
    """``x-amz-checksum-<algorithm>`` per checksum, then ``x-amz-checksum-type`` when ``kind`` is given."""
    headers = {CHECKSUM_HEADER_PREFIX + a: v for a, v in checksums.items()}
    if kind is not None and checksums:
        headers["x-amz-checksum-type"] = kind
    return headers


def upload_checksum_headers(checksum: UploadChecksum | None) -> dict[str, str]:
    """CreateMultipartUpload's answer: the algorithm (as S3 spells it, ``SHA256``) and the type."""
    if checksum is None:
        return {}
    return {"x-amz-checksum-algorithm": checksum.algorithm.upper(), "x-amz-checksum-type": checksum.type}


def upload_checksum_elements(checksum: UploadChecksum | None) -> str:
    """ListParts' and ListMultipartUploads' ``ChecksumAlgorithm`` and ``ChecksumType``."""
    if checksum is None:
        return ""
    return element("ChecksumAlgorithm", checksum.algorithm.upper()) + element("ChecksumType", checksum.type)


def object_checksums_requested(headers: Mapping[str, str]) -> dict[str, str]:
    """The ``x-amz-checksum-<algorithm>`` headers of a CompleteMultipartUpload: the object checksum the
    client expects, as it wrote it (a COMPOSITE one ends in ``-<parts>``); the store compares them."""
    found: dict[str, str] = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered.startswith(CHECKSUM_HEADER_PREFIX) and lowered not in _NOT_VALUES:
            found[lowered[len(CHECKSUM_HEADER_PREFIX) :]] = value.strip()
    return found
