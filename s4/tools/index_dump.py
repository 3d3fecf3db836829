"""``s4 index``: a sidecar's header and entries, as text."""

from __future__ import annotations

from s4.codec import FrameIndex


def format_index(index: FrameIndex) -> str:
    lines = [
        f"version: {index.version}",
        f"frames: {len(index.entries)}",
        f"total original: {index.total_original}",
        f"total stored (padded): {index.total_padded}",
    ]
    if index.version >= 2:
        lines.append(f"source compressed size: {index.source_compressed_size}")
        lines.append(f"etag: {index.etag}")
    lines.append(f"{'frame':>7} {'orig_offset':>14} {'orig_size':>12} {'stored_offset':>14} {'stored_size':>12}")
    for n, e in enumerate(index.entries):
        lines.append(
            f"{n:>7} {e.original_offset:>14} {e.original_size:>12} {e.compressed_offset:>14} {e.compressed_size:>12}"
        )
    return "\n".join(lines)
