"""Which frames move to the GPU: the dispatcher's per-frame promotion hook on a GPU node.

A large frame of a cpu-zstd object is compressed as nvcomp-zstd instead: the GPU does
it far faster, and its payload is still zstd, decodable by any CPU node, so nothing is
lost for readers without a GPU. Small frames stay on the CPU, where a batch launch is
not worth its copies. With ``prefer_columnar``, frames that look like integer columns
go to nvcomp-bitcomp, which packs them tighter; those frames then need a GPU to be
read, which is why it is an opt-in.
"""

from __future__ import annotations

from collections.abc import Iterable

from s4.codec.buffer import Buffer
from s4.codec.format.kinds import CodecKind
from s4.codec.gpu.columnar import integer_column_type

PROMOTABLE = frozenset({CodecKind.CPU_ZSTD, CodecKind.NVCOMP_ZSTD})
"""Object codecs whose frames may be moved: the zstd family (not gzip, dictionaries or passthrough)."""


class GpuPromotion:
    def __init__(self, gpu_kinds: Iterable[CodecKind], min_bytes: int, prefer_columnar: bool = False) -> None:
        self.gpu_kinds = frozenset(gpu_kinds)
        self.min_bytes = min_bytes
        self.prefer_columnar = prefer_columnar

    def __call__(self, object_kind: CodecKind, frame: Buffer) -> CodecKind:
        if object_kind not in PROMOTABLE or len(frame) < self.min_bytes:
            return object_kind
        if (
            self.prefer_columnar
            and CodecKind.NVCOMP_BITCOMP in self.gpu_kinds
            and integer_column_type(frame) is not None
        ):
            return CodecKind.NVCOMP_BITCOMP
        if CodecKind.NVCOMP_ZSTD in self.gpu_kinds:
            return CodecKind.NVCOMP_ZSTD
        return object_kind
