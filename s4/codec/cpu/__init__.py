"""Codecs that run on the CPU: passthrough, zstd, gzip, zstd with a dictionary, and nvcomp-zstd's chunked zstd.

The last one writes and reads the same FCG1 containers the GPU's nvCOMP zstd does, so a
node without a GPU reads what a GPU node wrote.
"""

from s4.codec.cpu.gzip import DEFAULT_GZIP_LEVEL, CpuGzipCodec
from s4.codec.cpu.nvcomp_zstd import NvcompZstdCpuCodec
from s4.codec.cpu.passthrough import PassthroughCodec
from s4.codec.cpu.zstd import DEFAULT_ZSTD_LEVEL, CpuZstdCodec, check_zstd_level
from s4.codec.cpu.zstd_dict import CpuZstdDictCodec, ZstdDictionary

__all__ = [
    "DEFAULT_GZIP_LEVEL",
    "DEFAULT_ZSTD_LEVEL",
    "CpuGzipCodec",
    "CpuZstdCodec",
    "CpuZstdDictCodec",
    "NvcompZstdCpuCodec",
    "PassthroughCodec",
    "ZstdDictionary",
    "check_zstd_level",
]
