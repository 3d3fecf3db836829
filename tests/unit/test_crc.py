import zlib

from hypothesis import given
from hypothesis import strategies as st

from s4.codec import crc32c, crc32c_combine


def test_known_vector():
    # The CRC-32C check value from the Castagnoli/iSCSI specification.
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"") == 0


def test_incremental_equals_whole():
    assert crc32c(b"6789", crc32c(b"12345")) == crc32c(b"123456789")


@given(st.binary(max_size=5000), st.binary(max_size=5000))
def test_combine_equals_crc_of_concatenation(a, b):
    assert crc32c_combine(crc32c(a), crc32c(b), len(b)) == crc32c(a + b)


def test_combine_over_large_lengths_matches():
    a = b"x" * 1000
    b = bytes(range(256)) * 40000  # ~10 MB exercises many zero-byte operators
    assert crc32c_combine(crc32c(a), crc32c(b), len(b)) == crc32c(a + b)
    assert crc32c(b) != zlib.crc32(b)  # Castagnoli, not the zlib polynomial
