"""cpu-zstd-dict: zstd with a trained dictionary stored at ``.s4dict/<id>`` in the bucket.

Small objects of one shape (JSON events, log lines) compress poorly alone and well
against a shared dictionary. A codec instance is bound to one dictionary; the registry
makes one per dictionary an object names.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib

import zstandard

from s4.codec.base import FAST_INLINE_COMPRESS, Codec
from s4.codec.buffer import Buffer
from s4.codec.cpu.zstd import DEFAULT_ZSTD_LEVEL, FAST_LEVEL, check_zstd_level
from s4.codec.cpu.zstd_frame import PerThread, decompress_zstd_frame
from s4.codec.errors import CodecError
from s4.codec.format.kinds import CodecKind

DICT_PREFIX = ".s4dict/"


@dataclasses.dataclass(frozen=True)
class ZstdDictionary:
    data: bytes

    @functools.cached_property
    def dict_id(self) -> str:
        """The ``s4-dict-id``: the first 16 hex chars of the dictionary's SHA-256."""
        return hashlib.sha256(self.data).hexdigest()[:16]

    @property
    def object_key(self) -> str:
        return DICT_PREFIX + self.dict_id


class CpuZstdDictCodec(Codec):
    kind = CodecKind.CPU_ZSTD_DICT

    def __init__(self, dictionary: ZstdDictionary, level: int = DEFAULT_ZSTD_LEVEL) -> None:
        self.dictionary = dictionary
        self.level = check_zstd_level(level)
        self.inline_compress_limit = FAST_INLINE_COMPRESS if self.level <= FAST_LEVEL else 0
        try:
            self._zdict = zstandard.ZstdCompressionDict(dictionary.data)
            self._zdict.precompute_compress(level=self.level)
        except zstandard.ZstdError as exc:
            raise CodecError.corrupt(f"dictionary {dictionary.dict_id} is unusable: {exc}") from None
        self._cctx = PerThread(lambda: zstandard.ZstdCompressor(level=self.level, dict_data=self._zdict))
        self._dctx = PerThread(lambda: zstandard.ZstdDecompressor(dict_data=self._zdict))

    def compress(self, data: Buffer) -> bytes:
        return self._cctx.get().compress(data)

    def decompress(self, payload: Buffer, original_size: int) -> bytes:
        return decompress_zstd_frame(self._dctx.get(), payload, original_size, self.kind.wire_name)
