"""``s4 estimate``: what a tree or a bucket would cost once stored through the gateway.

Every sampled object goes through the very encoder a PUT uses (``BodyEncoder`` of the
compressing store, with the dispatcher, codec, level and frame policy the gateway's settings
give), and its stored stream is counted, not kept: so the passthrough decisions, the framing
(28 bytes a frame, passthrough frames included) and the ``<key>.s4index`` sidecar of a
multi-frame object are all in the figure, as the gateway would store them.

Within the byte budget every object is read whole. Past it, objects are taken in a random
(seeded) order until the budget is spent, each at most ``object_cap`` bytes read from its start
and cut at a frame boundary (frames are compressed independently, so whole frames from the
start of an object stand for the rest of it); the sampled objects' figures are then scaled up
to the whole set by bytes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import mimetypes
import os
import random
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from s4.codec import ChunkManifest, CodecDispatcher, CpuCodecPool
from s4.codec.dispatcher import SAMPLE_SIZE
from s4.codec.format.index import ENTRY
from s4.codec.policy import FramePolicy
from s4.store.base import ByteRange, ObjectStore
from s4.store.compressing.encoding import BodyEncoder
from s4.store.compressing.reserved import is_reserved
from s4.store.stats import StoreStats
from s4.store.walk import walk
from s4.tools.location import BucketUrl
from s4.tools.progress import bar

MiB = 1024 * 1024
GiB = 1024**3
DEFAULT_BUDGET = 256 * MiB
S3_STANDARD_PRICE = 0.023
"""USD per GB-month: S3 Standard's list price, first 50 TB a month, us-east-1 (AWS bills a GB as 2^30 bytes)."""
READ_CHUNK = 1024 * 1024
ALREADY_S4 = "already S4 (as stored)"
"""The class of objects a bucket holds in the S4 format already: original and stored sizes as they are
(sidecars left out), counted in full only where they were sampled."""
ETAG_PLACEHOLDER = "0" * 32
"""A sidecar binds its object's ETag: an MD5's 32 hex digits, as a single PUT's ETag is."""


@dataclasses.dataclass(frozen=True)
class Candidate:
    """One object of the set: a name to report, its size, and how to read (a prefix of) it."""

    name: str
    size: int
    read: Callable[[int], AsyncIterator[tuple[bytes, str | None, dict[str, str]]]]
    """``read(limit)`` yields ``(chunk, content_type, metadata)``: the first ``limit`` bytes of the object."""


@dataclasses.dataclass
class ClassRow:
    """Totals of one content class (before scaling to the whole set)."""

    name: str
    objects: int = 0
    original: int = 0
    stored: float = 0.0

    def add(self, original: int, stored: float) -> None:
        self.objects += 1
        self.original += original
        self.stored += stored


@dataclasses.dataclass
class Estimate:
    source: str
    objects: int
    total_bytes: int
    sampled_objects: int
    sampled_bytes: int
    """Bytes actually read and encoded."""
    classes: dict[str, ClassRow]
    price: float
    codec: str
    zstd_level: int

    @property
    def _covered(self) -> int:
        """Original bytes of the sampled objects (whole sizes, extrapolated ones included)."""
        return sum(row.original for row in self.classes.values())

    @property
    def scale(self) -> float:
        covered = self._covered
        return self.total_bytes / covered if covered else 0.0

    @property
    def original_bytes(self) -> int:
        return self.total_bytes

    @property
    def estimated_stored_bytes(self) -> int:
        return round(sum(row.stored for row in self.classes.values()) * self.scale)

    def rows(self) -> list[dict[str, Any]]:
        """Per-class figures scaled to the whole set, largest class first."""
        scale = self.scale
        object_scale = self.objects / self.sampled_objects if self.sampled_objects else 0.0
        out = []
        for row in sorted(self.classes.values(), key=lambda r: (-r.original, r.name)):
            original = round(row.original * scale)
            stored = round(row.stored * scale)
            out.append(self._figures(row.name, round(row.objects * object_scale), original, stored))
        return out

    def _figures(self, name: str, objects: int, original: int, stored: int) -> dict[str, Any]:
        return {
            "class": name,
            "objects": objects,
            "original_bytes": original,
            "estimated_stored_bytes": stored,
            "ratio": round(original / stored, 3) if stored else None,
            "monthly_saving": round((original - stored) / GiB * self.price, 4),
        }

    def to_dict(self) -> dict[str, Any]:
        total = self._figures("total", self.objects, self.original_bytes, self.estimated_stored_bytes)
        return {
            "source": self.source,
            "objects": self.objects,
            "original_bytes": self.original_bytes,
            "estimated_stored_bytes": self.estimated_stored_bytes,
            "ratio": total["ratio"],
            "monthly_saving": total["monthly_saving"],
            "price_per_gb_month": self.price,
            "currency": "USD",
            "codec": self.codec,
            "zstd_level": self.zstd_level,
            "sampled_objects": self.sampled_objects,
            "sampled_bytes": self.sampled_bytes,
            "exact": self.sampled_objects == self.objects and self.sampled_bytes == self.total_bytes,
            "classes": self.rows(),
        }


def classify(dispatcher: CodecDispatcher, sample: bytes, content_type: str | None) -> str:
    """The content class of an object, from the dispatcher's own verdict on its first bytes."""
    dispatch = dispatcher.choose(sample, content_type)
    reason = dispatch.reason
    if reason.startswith("magic:"):
        return f"compressed ({reason[len('magic:') :]})"
    if reason == "content-type":
        return "compressed media (by content type)"
    if reason == "entropy":
        return "high-entropy (random, encrypted)"
    if reason == "empty":
        return "empty"
    return "text" if _looks_like_text(sample) else "binary"


def _looks_like_text(sample: bytes) -> bool:
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(sample) - 3  # a character cut by the sample's end
    return True


def sidecar_bytes(entries_sampled: int, sampled_index_len: int, frames: int) -> int:
    """Length of the sidecar of an object of ``frames`` frames (none for one frame): the index of the
    sampled frames, plus one entry per frame not read."""
    if frames <= 1:
        return 0
    return sampled_index_len + ENTRY.size * (frames - entries_sampled)


async def measure(
    encoder: BodyEncoder, candidate: Candidate, limit: int, on_bytes: Callable[[int], None]
) -> tuple[str, int, float]:
    """Encode the first ``limit`` bytes of ``candidate`` as a PUT of the whole object would, counting
    what would be stored. ``(class, original size, estimated stored bytes)``; an object already in the
    S4 format is not encoded again: ``(ALREADY_S4, its original size, its stored size)``."""
    sample = bytearray()
    meta: dict[str, Any] = {}
    chunks = candidate.read(limit)

    async def body() -> AsyncIterator[bytes]:
        async for chunk, content_type, metadata in chunks:
            meta.setdefault("content_type", content_type)
            meta.setdefault("metadata", metadata)
            if len(sample) < SAMPLE_SIZE:
                sample.extend(chunk[: SAMPLE_SIZE - len(sample)])
            on_bytes(len(chunk))
            yield chunk

    source = body()
    first = await anext(source, None)
    manifest = ChunkManifest.from_metadata(meta.get("metadata") or {}) if first is not None else None
    if manifest is not None:
        await source.aclose()
        return ALREADY_S4, manifest.original_size, float(candidate.size)

    async def replay() -> AsyncIterator[bytes]:
        if first is not None:
            yield first
        async for chunk in source:
            yield chunk

    content_type = meta.get("content_type")
    upload, stored = await encoder.encode(replay(), content_type, candidate.size)
    stored_bytes = 0
    async for piece in stored:
        stored_bytes += len(piece)
    read = upload.original_size
    frame_size = encoder.policy.frame_size(candidate.size)
    frames = math.ceil(candidate.size / frame_size) if candidate.size else 0
    sampled_frames = upload.writer.frame_count
    index_len = len(upload.writer.index(ETAG_PLACEHOLDER).encode()) if sampled_frames else 0
    # A prefix of whole frames stands for the rest of the object (frames are compressed independently).
    stored_total = stored_bytes * candidate.size / read if 0 < read < candidate.size else float(stored_bytes)
    stored_total += sidecar_bytes(sampled_frames, index_len, frames)
    return classify(encoder.dispatcher, bytes(sample), content_type), candidate.size, stored_total


def plan(
    candidates: Sequence[Candidate], budget: int, object_cap: int, policy: FramePolicy, seed: int
) -> list[tuple[Candidate, int]]:
    """What to read: every object whole when the set fits the budget, else a seeded random sample."""
    total = sum(c.size for c in candidates)
    if total <= budget:
        return [(c, c.size) for c in candidates]
    order = list(candidates)
    random.Random(seed).shuffle(order)
    chosen, used = [], 0
    for candidate in order:
        if used >= budget:
            break
        frame = policy.frame_size(candidate.size)
        cap = max(frame, object_cap // frame * frame)
        take = min(candidate.size, cap)
        chosen.append((candidate, take))
        used += take
    return chosen


async def run_estimate(
    candidates: Sequence[Candidate],
    pool: CpuCodecPool,
    dispatcher: CodecDispatcher,
    policy: FramePolicy,
    *,
    source: str,
    budget: int = DEFAULT_BUDGET,
    object_cap: int | None = None,
    price: float = S3_STANDARD_PRICE,
    concurrency: int = 8,
    seed: int = 0,
    progress: bool | None = None,
    zstd_level: int = 3,
) -> Estimate:
    encoder = BodyEncoder(pool, dispatcher, policy, StoreStats())
    cap = object_cap if object_cap is not None else min(budget, max(16 * MiB, budget // 16))
    chosen = plan(candidates, budget, cap, policy, seed)
    classes: dict[str, ClassRow] = {}
    work = iter(chosen)
    sampled = 0
    listed_as_stored = 0
    """What the listing's sizes of S4 objects (stored) fall short of their original sizes."""
    with bar(sum(take for _, take in chosen), "B", "estimate", enabled=progress) as shown:

        async def worker() -> None:
            nonlocal sampled, listed_as_stored
            for candidate, take in work:
                name, original, stored = await measure(encoder, candidate, take, shown.update)
                sampled += take
                if name == ALREADY_S4:
                    listed_as_stored += original - candidate.size
                classes.setdefault(name, ClassRow(name)).add(original, stored)

        await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return Estimate(
        source=source,
        objects=len(candidates),
        total_bytes=sum(c.size for c in candidates) + listed_as_stored,
        sampled_objects=len(chosen),
        sampled_bytes=sampled,
        classes=classes,
        price=price,
        codec=dispatcher.default.wire_name,
        zstd_level=zstd_level,
    )


# --- what to estimate: local files, or a bucket --------------------------------------------------------


def local_candidates(paths: Iterable[Path]) -> list[Candidate]:
    """Regular files under ``paths`` (symbolic links are not followed), content types guessed from
    their names as aws-cli does when it uploads them."""
    found: list[Candidate] = []
    for root in paths:
        if root.is_file():
            files: Iterable[Path] = [root]
        elif root.is_dir():
            files = sorted(
                Path(d) / f for d, _, names in os.walk(root) for f in names if not (Path(d) / f).is_symlink()
            )
        else:
            raise FileNotFoundError(f"{root}: no such file or directory")
        for path in files:
            if path.is_file():
                found.append(Candidate(str(path), path.stat().st_size, _file_reader(path)))
    return found


def _file_reader(path: Path) -> Callable[[int], AsyncIterator[tuple[bytes, str | None, dict[str, str]]]]:
    content_type = mimetypes.guess_type(path.name)[0]

    async def read(limit: int) -> AsyncIterator[tuple[bytes, str | None, dict[str, str]]]:
        with path.open("rb") as f:
            left = limit
            while left > 0:
                chunk = await asyncio.to_thread(f.read, min(READ_CHUNK, left))
                if not chunk:
                    return
                left -= len(chunk)
                yield chunk, content_type, {}

    return read


async def bucket_candidates(store: ObjectStore, url: BucketUrl) -> list[Candidate]:
    """Every client object under the prefix (the gateway's own sidecars, staging and dictionaries left out)."""
    found = []
    async for obj in walk(store, url.bucket, url.prefix):
        if not is_reserved(obj.key):
            found.append(
                Candidate(f"s3://{url.bucket}/{obj.key}", obj.size, _object_reader(store, url.bucket, obj.key))
            )
    return found


def _object_reader(store: ObjectStore, bucket: str, key: str):
    async def read(limit: int) -> AsyncIterator[tuple[bytes, str | None, dict[str, str]]]:
        if limit <= 0:
            return
        stream = await store.get_object(bucket, key, ByteRange(0, limit - 1))
        try:
            attributes = stream.info.attributes
            async for chunk in stream.body:
                yield chunk, attributes.content_type, attributes.metadata
        finally:
            await stream.aclose()

    return read


# --- the report ---------------------------------------------------------------------------------------------


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def format_estimate(estimate: Estimate) -> str:
    data = estimate.to_dict()
    lines = [
        f"{data['source']}: {data['objects']} objects, {human(data['original_bytes'])}"
        + (
            ""
            if data["exact"]
            else f" (sampled {data['sampled_objects']} objects, {human(data['sampled_bytes'])} read; scaled up)"
        ),
        f"codec {data['codec']} (zstd level {data['zstd_level']}); price ${data['price_per_gb_month']}/GB-month"
        + (" (S3 Standard list price, us-east-1)" if data["price_per_gb_month"] == S3_STANDARD_PRICE else ""),
        "",
        f"{'class':<36} {'objects':>8} {'original':>12} {'stored':>12} {'ratio':>7} {'saving/month':>13}",
    ]
    for row in [*data["classes"], {**data, "class": "total"}]:
        ratio = f"{row['ratio']:.2f}" if row["ratio"] else "-"
        lines.append(
            f"{row['class']:<36} {row['objects']:>8} {human(row['original_bytes']):>12}"
            f" {human(row['estimated_stored_bytes']):>12} {ratio:>7} {_money(row['monthly_saving']):>13}"
        )
    return "\n".join(lines)


def _money(amount: float) -> str:
    """Dollars, to the cent; small amounts (a test tree) to the hundredth of a cent."""
    return f"${amount:,.2f}" if abs(amount) >= 1 else f"${amount:.4f}"
