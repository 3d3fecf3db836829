"""Counters the compressing store keeps; the metrics layer reads them, the store imports no metrics library."""

from __future__ import annotations

import collections
import dataclasses


@dataclasses.dataclass
class StoreStats:
    backend_bytes_read: int = 0
    backend_bytes_written: int = 0
    range_frames_fetched: int = 0
    sidecar_fallbacks: int = 0
    corrupt_frames: int = 0
    objects_stored_uncompressed: collections.Counter = dataclasses.field(default_factory=collections.Counter)
