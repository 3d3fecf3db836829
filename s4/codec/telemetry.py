"""What one codec call cost, handed to a callback so the codec layer needs no metrics library."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable

from s4.codec.format.kinds import CodecKind


class CodecOp(enum.Enum):
    COMPRESS = "compress"
    DECOMPRESS = "decompress"


@dataclasses.dataclass(frozen=True, slots=True)
class CompressTelemetry:
    """One codec call (or one device batch): enough for throughput, ratio and OOM metrics."""

    codec: CodecKind
    device: str
    op: CodecOp
    bytes_in: int
    bytes_out: int
    seconds: float
    oom: bool = False
    frames: int = 1

    @property
    def throughput_bytes_per_sec(self) -> float:
        """Original bytes per second: input when compressing, output when decompressing."""
        original = self.bytes_in if self.op is CodecOp.COMPRESS else self.bytes_out
        return original / self.seconds if self.seconds > 0 else 0.0


TelemetryCallback = Callable[[CompressTelemetry], None]
