"""CRC32C (Castagnoli), the checksum of every S4 frame and manifest.

awscrt's implementation uses the CPU's CRC instructions; a pure-Python CRC would
cost more than the zstd decoding it guards.
"""

from __future__ import annotations

from awscrt.checksums import crc32c as _awscrt_crc32c

from s4.codec.buffer import Buffer


def crc32c(data: Buffer, previous: int = 0) -> int:
    """CRC32C of ``data``, continuing from ``previous`` for incremental use."""
    return _awscrt_crc32c(data, previous)


_CRC32C_POLY_REFLECTED = 0x82F63B78


def _times(matrix: list[int], vector: int) -> int:
    result = 0
    row = 0
    while vector:
        if vector & 1:
            result ^= matrix[row]
        vector >>= 1
        row += 1
    return result


def _square(matrix: list[int]) -> list[int]:
    return [_times(matrix, matrix[n]) for n in range(32)]


def _zero_byte_operators() -> list[list[int]]:
    """Operators that advance a CRC over 2**k zero bytes, for k = 0..63."""
    one_bit = [_CRC32C_POLY_REFLECTED] + [1 << n for n in range(31)]
    op = _square(_square(_square(one_bit)))  # 8 zero bits = one zero byte
    ops = [op]
    for _ in range(63):
        op = _square(op)
        ops.append(op)
    return ops


_ZERO_BYTES = _zero_byte_operators()


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC32C of A+B from crc(A), crc(B) and len(B), without touching the bytes again.

    The whole-object CRC of the manifest then costs nothing beyond the per-frame CRCs
    we compute anyway (the same trick as zlib's crc32_combine).
    """
    k = 0
    while len2:
        if len2 & 1:
            crc1 = _times(_ZERO_BYTES[k], crc1)
        len2 >>= 1
        k += 1
    return crc1 ^ crc2
