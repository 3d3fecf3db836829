"""Counters the compressing store keeps; the metrics layer reads them, the store imports no metrics library."""

from __future__ import annotations

import collections
import contextvars
import dataclasses


@dataclasses.dataclass
class StoreStats:
    backend_bytes_read: int = 0
    backend_bytes_written: int = 0
    range_frames_fetched: int = 0
    sidecar_fallbacks: int = 0
    corrupt_frames: int = 0
    objects_stored_uncompressed: collections.Counter = dataclasses.field(default_factory=collections.Counter)


WRITE_OUTCOME: contextvars.ContextVar[tuple[str, int, int] | None] = contextvars.ContextVar(
    "s4_write_outcome", default=None
)
"""(codec name, original bytes, stored bytes) of the object the current request just wrote.

Set by the compressing store, read by the access log: the server learns the codec as a
plain string without knowing codecs.
"""
