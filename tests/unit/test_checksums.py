import base64
import hashlib
import zlib

import pytest
from botocore import httpchecksum
from hypothesis import given
from hypothesis import strategies as st

from s4.server.body.checksums import (
    CHECKSUM_ALGORITHMS,
    BodyDigests,
    checksum_of,
    requested_checksums,
    trailer_algorithm,
)
from s4.server.errors import S3Error

CHECK = b"123456789"

# botocore's own checksum classes: the values an SDK puts in x-amz-checksum-*.
BOTOCORE = {
    "crc32": httpchecksum.Crc32Checksum,
    "crc32c": httpchecksum.CrtCrc32cChecksum,
    "crc64nvme": httpchecksum.CrtCrc64NvmeChecksum,
    "sha1": httpchecksum.Sha1Checksum,
    "sha256": httpchecksum.Sha256Checksum,
}


def _int(value: str) -> int:
    return int.from_bytes(base64.b64decode(value), "big")


def test_crc_check_values():
    assert _int(checksum_of("crc32", CHECK)) == 0xCBF43926
    assert _int(checksum_of("crc32c", CHECK)) == 0xE3069283
    assert _int(checksum_of("crc64nvme", CHECK)) == 0xAE8B14860A799888


def test_wire_forms():
    assert checksum_of("crc32", CHECK) == "y/Q5Jg=="
    assert checksum_of("crc32c", CHECK) == "4waSgw=="
    assert checksum_of("crc64nvme", CHECK) == "rosUhgp5mIg="
    assert checksum_of("sha1", CHECK) == base64.b64encode(hashlib.sha1(CHECK).digest()).decode()
    assert checksum_of("sha256", CHECK) == base64.b64encode(hashlib.sha256(CHECK).digest()).decode()
    assert len(base64.b64decode(checksum_of("crc64nvme", b""))) == 8


@pytest.mark.parametrize("algorithm", CHECKSUM_ALGORITHMS)
def test_matches_botocore(algorithm):
    data = bytes(range(256)) * 300
    theirs = BOTOCORE[algorithm]()
    theirs.update(data)
    assert checksum_of(algorithm, data) == theirs.b64digest()


@given(st.lists(st.binary(max_size=300), max_size=8))
def test_incremental_equals_one_shot(pieces):
    digests = BodyDigests(sha256=True, algorithms=CHECKSUM_ALGORITHMS, md5=True)
    for piece in pieces:
        digests.update(piece)
    whole = b"".join(pieces)
    for algorithm in CHECKSUM_ALGORITHMS:
        assert digests.checksum(algorithm) == checksum_of(algorithm, whole)
    assert digests.md5_hex == hashlib.md5(whole).hexdigest()
    assert digests.md5_base64 == base64.b64encode(hashlib.md5(whole).digest()).decode()
    assert digests.sha256_hex == hashlib.sha256(whole).hexdigest()
    assert _int(digests.checksum("crc32")) == zlib.crc32(whole)


def test_body_digests_only_computes_what_was_asked():
    digests = BodyDigests(algorithms=["crc32c"])
    digests.update(CHECK)
    assert digests.checksum("crc32c") == "4waSgw=="
    with pytest.raises(ValueError):
        digests.checksum("crc32")
    with pytest.raises(ValueError):
        _ = digests.sha256_hex
    with pytest.raises(ValueError):
        BodyDigests(algorithms=["md4"])


def test_sha256_shared_between_content_hash_and_checksum():
    digests = BodyDigests(sha256=True, algorithms=["sha256"])
    digests.update(CHECK)
    assert digests.sha256_hex == hashlib.sha256(CHECK).hexdigest()
    assert digests.checksum("sha256") == checksum_of("sha256", CHECK)


def test_requested_checksums_reads_any_case():
    value = checksum_of("crc32", CHECK)
    assert requested_checksums({"X-Amz-Checksum-CRC32": value, "Content-Length": "9"}) == {"crc32": value}
    assert requested_checksums({"content-type": "text/plain"}) == {}


def test_requested_checksums_ignores_non_value_headers():
    headers = {"x-amz-checksum-algorithm": "CRC32", "x-amz-checksum-type": "FULL_OBJECT", "x-amz-checksum-mode": "x"}
    assert requested_checksums(headers) == {}


@pytest.mark.parametrize("algorithm", CHECKSUM_ALGORITHMS)
def test_requested_checksums_validates_length(algorithm):
    good = checksum_of(algorithm, CHECK)
    assert requested_checksums({f"x-amz-checksum-{algorithm}": good}) == {algorithm: good}
    short = base64.b64encode(base64.b64decode(good)[:-1]).decode()
    with pytest.raises(S3Error) as info:
        requested_checksums({f"x-amz-checksum-{algorithm}": short})
    assert info.value.code == "BadDigest"


@pytest.mark.parametrize("value", ["", "not base64!", "y/Q5Jg", "y/Q5Jg==x", "AAAAAAAA"])
def test_requested_checksums_rejects_malformed(value):
    with pytest.raises(S3Error) as info:
        requested_checksums({"x-amz-checksum-crc32": value})
    assert info.value.code == "BadDigest"  # as s3-tests expect (AWS: InvalidRequest), see requested_checksums
    assert "CRC32" in info.value.message


def test_requested_checksums_rejects_two_algorithms_and_unknown_ones():
    with pytest.raises(S3Error) as info:
        requested_checksums({"x-amz-checksum-crc32": "y/Q5Jg==", "x-amz-checksum-crc32c": "4waSgw=="})
    assert info.value.code == "InvalidRequest"
    with pytest.raises(S3Error):
        requested_checksums({"x-amz-checksum-md5": "AAAAAAAAAAAAAAAAAAAAAA=="})


def test_trailer_algorithm():
    assert trailer_algorithm({"X-Amz-Trailer": "x-amz-checksum-crc32"}) == "crc32"
    assert trailer_algorithm({"x-amz-trailer": " X-Amz-Checksum-CRC64NVME "}) == "crc64nvme"
    assert trailer_algorithm({}) is None
    for bad in ("x-amz-checksum-md5", "x-amz-meta-foo", "x-amz-checksum-crc32,x-amz-checksum-sha1"):
        with pytest.raises(S3Error) as info:
            trailer_algorithm({"x-amz-trailer": bad})
        assert info.value.code == "InvalidRequest"
