"""Bounded decoding of one standard zstd frame, shared by every zstd-based codec.

A frame's header may claim any content size; we check it against the size we expect
before zstd allocates anything, and cap the output at that size when the header
claims none (the Rust gateway streams its frames and never writes one).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import zstandard

from s4.codec.buffer import Buffer
from s4.codec.errors import CodecError

MAX_ZSTD_RATIO = 128 * 1024 // 4
"""No zstd frame decodes to more than this many times its length: a block yields at most 128 KiB
and takes at least 4 bytes (an RLE block). Real encoders reach 32,500:1 on zeros."""


def decompress_zstd_frame(dctx: zstandard.ZstdDecompressor, payload: Buffer, original_size: int, what: str) -> bytes:
    """Exactly ``original_size`` bytes from one zstd frame, or a corrupt-data CodecError."""
    try:
        declared = zstandard.frame_content_size(payload)
    except zstandard.ZstdError as exc:
        raise CodecError.corrupt(f"{what}: not a zstd frame ({exc})") from None
    if declared not in (-1, original_size):
        raise CodecError.corrupt(f"{what}: zstd frame declares {declared} bytes, expected {original_size}")
    if original_size > len(payload) * MAX_ZSTD_RATIO + 128 * 1024:
        # zstd allocates the whole output before decoding a byte: a 20-byte payload whose header
        # claims 5 GiB would cost a 5 GiB allocation just to find out it lies.
        raise CodecError.corrupt(f"{what}: {len(payload)} bytes of zstd cannot decode to {original_size} bytes")
    try:
        out = dctx.decompress(payload, max_output_size=max(original_size, 1), allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise CodecError.corrupt(f"{what}: zstd frame does not decode ({exc})") from None
    except MemoryError:
        raise CodecError.out_of_memory(f"{what}: out of memory decoding {original_size} bytes") from None
    if len(out) != original_size:
        raise CodecError.corrupt(f"{what}: zstd frame decoded to {len(out)} bytes, expected {original_size}")
    return out


class PerThread:
    """One zstd context per thread: contexts are not safe to share, and building one per call is slow."""

    def __init__(self, factory: Callable[[], object]) -> None:
        self._factory = factory
        self._local = threading.local()

    def get(self):
        ctx = getattr(self._local, "ctx", None)
        if ctx is None:
            ctx = self._factory()
            self._local.ctx = ctx
        return ctx
