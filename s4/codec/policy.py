"""How big the frames of an object are: the trade between ratio and Range GET cost.

Small objects are one frame (a ranged read of them is cheap anyway); larger objects
are cut into frames so a Range GET decodes at most one frame's worth beyond what it
asked for, and huge ones into bigger frames to keep the frame count (and sidecar) small.
"""

from __future__ import annotations

import dataclasses

MiB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class FramePolicy:
    single_frame_max: int = 1 * MiB
    medium_frame: int = 4 * MiB
    medium_max: int = 100 * MiB
    large_frame: int = 16 * MiB
    unknown_frame: int = 4 * MiB

    def frame_size(self, total: int | None) -> int:
        """Frame size for a body of ``total`` bytes (None when the length is not known up front)."""
        if total is None:
            return self.unknown_frame
        if total <= self.single_frame_max:
            return max(total, 1)
        if total <= self.medium_max:
            return self.medium_frame
        return self.large_frame
