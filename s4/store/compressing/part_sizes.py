"""Original part sizes of a multipart object, kept in its metadata (our extension ``s4-part-sizes``).

GET/HEAD with ``partNumber`` needs the original part boundaries, which the stored
(compressed) object no longer shows. Uploads almost always use one part size plus a
shorter last part, so runs (``8388608x12,1234``) keep the value short; when it would
not fit comfortably in S3's 2 KB metadata budget it is left out and partNumber reads
fall back to treating the object as one part.
"""

from __future__ import annotations

from s4.digits import decimal

KEY_PART_SIZES = "s4-part-sizes"
MAX_ENCODED = 1024


def encode_part_sizes(sizes: list[int]) -> str | None:
    runs: list[list[int]] = []
    for size in sizes:
        if runs and runs[-1][0] == size:
            runs[-1][1] += 1
        else:
            runs.append([size, 1])
    text = ",".join(f"{size}x{count}" if count > 1 else str(size) for size, count in runs)
    return text if len(text) <= MAX_ENCODED else None


def decode_part_sizes(text: str | None) -> tuple[int, ...] | None:
    """The sizes, or None for a missing or malformed value (never an error: it is only a convenience)."""
    if not text or len(text) > MAX_ENCODED:
        return None
    sizes: list[int] = []
    for run in text.split(","):
        size_text, _, count_text = run.partition("x")
        size, repeat = decimal(size_text), decimal(count_text) if count_text else 1
        if size is None or repeat is None or not 1 <= repeat <= 10_000 or len(sizes) + repeat > 10_000:
            return None
        sizes.extend([size] * repeat)
    return tuple(sizes)
