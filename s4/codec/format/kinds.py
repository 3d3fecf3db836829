"""The frozen codec ids of the S4 stored format (FORMAT.md section 2)."""

from __future__ import annotations

import enum

from s4.codec.errors import CodecError


class CodecKind(enum.IntEnum):
    """Wire id and kebab-case name of every codec; the ids never change."""

    PASSTHROUGH = 0
    CPU_ZSTD = 1
    NVCOMP_ZSTD = 2
    NVCOMP_BITCOMP = 3
    NVCOMP_GANS = 4
    DIETGPU_ANS = 5
    NVCOMP_GDEFLATE = 6
    CPU_GZIP = 7
    CPU_ZSTD_DICT = 8

    @property
    def wire_name(self) -> str:
        return self.name.lower().replace("_", "-")

    def __str__(self) -> str:
        return self.wire_name

    @classmethod
    def from_name(cls, name: str) -> CodecKind:
        """Parse a metadata/config name such as ``cpu-zstd``; unknown names are corrupt input."""
        kind = _BY_NAME.get(name.strip().lower())
        if kind is None:
            known = ", ".join(k.wire_name for k in cls)
            raise CodecError.corrupt(f"unknown codec name {name!r} (known: {known})")
        return kind

    @classmethod
    def from_id(cls, codec_id: int) -> CodecKind:
        """Parse a frame header's codec id; unknown ids are corrupt input."""
        try:
            return cls(codec_id)
        except ValueError:
            raise CodecError.corrupt(f"unknown codec id {codec_id} (known: 0-{max(cls)})") from None

    @property
    def needs_gpu_to_decode(self) -> bool:
        """Codecs whose payloads no CPU decoder here understands."""
        return self in (
            CodecKind.NVCOMP_BITCOMP,
            CodecKind.NVCOMP_GANS,
            CodecKind.NVCOMP_GDEFLATE,
            CodecKind.DIETGPU_ANS,
        )


_BY_NAME = {kind.wire_name: kind for kind in CodecKind}
