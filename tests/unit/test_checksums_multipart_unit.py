"""S3's multipart checksum rules (s4/store/checksums.py) and how the staging keeps part checksums."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import pytest
from awscrt import checksums as crt
from hypothesis import given, settings
from hypothesis import strategies as st

from s4.store.base import CompletionChecksums, PartInfo, StoreError, UploadChecksum
from s4.store.checksums import (
    checksum_type,
    combine,
    completed_checksum,
    object_checksum,
    part_algorithm_to_compute,
    upload_checksum,
    without_part_count,
)
from s4.store.compressing.part_checksums import (
    MAX_ENCODED,
    decode_part_checksums,
    encode_part_checksums,
    upload_checksum_of,
    upload_metadata,
)

CRCS = {"crc32": (crt.crc32, 4), "crc32c": (crt.crc32c, 4), "crc64nvme": (crt.crc64nvme, 8)}
NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def b64(algorithm: str, data: bytes) -> str:
    if algorithm in CRCS:
        function, size = CRCS[algorithm]
        raw = function(data).to_bytes(size, "big")
    else:
        raw = hashlib.new(algorithm, data).digest()
    return base64.b64encode(raw).decode()


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(CRCS)), st.binary(max_size=300), st.binary(max_size=300))
def test_combine_is_the_crc_of_the_concatenation(algorithm, a, b):
    function = CRCS[algorithm][0]
    assert combine(algorithm, function(a), function(b), len(b)) == function(a + b)


def test_s3_tests_vectors():
    """The values ceph/s3-tests expects for three 5 MiB parts of 'A', 'B' and 'C'."""
    parts = [c * 5 * 1024 * 1024 for c in (b"A", b"B", b"C")]
    expected = {
        ("crc32", "FULL_OBJECT"): "WgDhBQ==",
        ("crc32c", "FULL_OBJECT"): "xU+Krw==",
        ("crc64nvme", "FULL_OBJECT"): "i+6LR0y3eFo=",
        ("sha256", "COMPOSITE"): "uWBwpe1dxI4Vw8Gf0X9ynOdw/SS6VBzfWm9giiv1sf4=-3",
        ("sha1", "COMPOSITE"): "sizjvY4eud3MrcHdZM3cQ/ol39o=-3",
    }
    for (algorithm, kind), value in expected.items():
        given_parts = [(b64(algorithm, p), len(p)) for p in parts]
        assert object_checksum(UploadChecksum(algorithm, kind), given_parts) == value
        assert checksum_type(value) == kind
    assert without_part_count("uWBw=-3") == "uWBw=" and without_part_count("WgDhBQ==") == "WgDhBQ=="


@pytest.mark.parametrize(
    ("algorithm", "kind", "expected"),
    [
        ("SHA256", None, UploadChecksum("sha256", "COMPOSITE")),
        ("crc32", None, UploadChecksum("crc32", "COMPOSITE")),
        ("CRC32", "FULL_OBJECT", UploadChecksum("crc32", "FULL_OBJECT")),
        ("CRC64NVME", None, UploadChecksum("crc64nvme", "FULL_OBJECT")),
        (None, None, None),
    ],
)
def test_upload_checksum_defaults(algorithm, kind, expected):
    assert upload_checksum(algorithm, kind) == expected


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [(None, "COMPOSITE"), ("SHA1", "FULL_OBJECT"), ("CRC64NVME", "COMPOSITE"), ("MD5", None), ("CRC32", "PARTIAL")],
)
def test_upload_checksum_refusals(algorithm, kind):
    with pytest.raises(StoreError) as info:
        upload_checksum(algorithm, kind)
    assert info.value.code == "InvalidRequest"


def test_part_checksum_must_be_the_uploads():
    composite, full = UploadChecksum("sha256", "COMPOSITE"), UploadChecksum("crc32", "FULL_OBJECT")
    assert part_algorithm_to_compute(None, "crc32") is None
    assert part_algorithm_to_compute(composite, "sha256") is None
    assert part_algorithm_to_compute(full, None) == "crc32"  # computed by the store
    for upload, declared in [(composite, None), (composite, "crc32"), (full, "crc32c")]:
        with pytest.raises(StoreError) as info:
            part_algorithm_to_compute(upload, declared)
        assert info.value.code == "InvalidRequest"


def _parts(algorithm: str, datas: list[bytes]) -> list[PartInfo]:
    return [PartInfo(n, len(d), "0" * 32, NOW, {algorithm: b64(algorithm, d)}) for n, d in enumerate(datas, 1)]


def test_completion_rules():
    datas = [b"first part", b"second"]
    composite = UploadChecksum("sha256", "COMPOSITE")
    parts = _parts("sha256", datas)
    listed = {p.part_number: dict(p.checksums) for p in parts}
    value = completed_checksum(composite, parts, listed, CompletionChecksums(listed))
    assert value.endswith("-2")
    assert completed_checksum(composite, parts, listed, CompletionChecksums(listed, {"sha256": value})) == value
    assert completed_checksum(composite, parts, listed, CompletionChecksums(listed, {"sha256": value[:-2]})) == value

    def refused(upload, given, request=None) -> str:
        with pytest.raises(StoreError) as info:
            completed_checksum(upload, parts, given, request or CompletionChecksums(given))
        return info.value.code

    assert refused(composite, {1: listed[1], 2: {"sha256": listed[1]["sha256"]}}) == "InvalidPart"
    assert refused(composite, {1: listed[1], 2: {}}) == "InvalidRequest"  # COMPOSITE needs them all
    assert refused(composite, {1: listed[1], 2: {"crc32": "AAAAAA=="}}) == "BadDigest"
    assert refused(composite, listed, CompletionChecksums(listed, {"sha256": "bad"})) == "BadDigest"
    assert refused(composite, listed, CompletionChecksums(listed, type="FULL_OBJECT")) == "InvalidRequest"
    assert refused(None, listed) == "InvalidPart"  # checksums for an upload that has none

    full = UploadChecksum("crc32c", "FULL_OBJECT")
    crc_parts = _parts("crc32c", datas)
    assert completed_checksum(full, crc_parts, {}, None) == b64("crc32c", b"".join(datas))  # optional for FULL_OBJECT
    assert completed_checksum(None, parts, {}, None) is None


def test_part_checksums_in_metadata():
    checksum = UploadChecksum("sha256", "COMPOSITE")
    assert upload_checksum_of(upload_metadata(checksum)) == checksum
    assert upload_checksum_of({"s4-mpu-checksum": "sha256:FULL_OBJECT"}) is None  # not a valid pair
    values = [b64("sha256", bytes([i])) for i in range(5)]
    text = encode_part_checksums("sha256", values)
    assert decode_part_checksums({"s4-part-checksums": text}, "sha256", 5) == tuple(values)
    assert decode_part_checksums({"s4-part-checksums": text}, "sha256", 4) is None
    assert decode_part_checksums({"s4-part-checksums": text}, "sha1", 5) is None
    many = [b64("sha256", i.to_bytes(2, "big")) for i in range(40)]
    assert encode_part_checksums("sha256", many) is None  # over the metadata budget
    assert encode_part_checksums("sha256", values, used=MAX_ENCODED - 10) is None
