"""``s4 train-dict``: a zstd dictionary trained on a bucket's small objects, stored where the gateway reads it.

Small objects of one shape (JSON events, log records of 2-16 KiB) compress poorly one by one:
zstd has nothing to refer back to. A dictionary trained on a sample of them gives it that.
The sample is split: four fifths train, the held-out fifth measures the gain, each object
encoded as the gateway stores it (``BodyEncoder``, framing included) once with the settings'
codec and once as cpu-zstd-dict, so the figure is what the bucket would save, not a best case.

The dictionary goes to ``.s4dict/<id>`` in the bucket (id: the first 16 hex digits of its
SHA-256, FORMAT.md section 1), where the compressing store finds it to read any object whose
manifest names it. ``--apply`` then rewrites the small objects under the prefix with it (the
conditional, resumable rewrite of ``s4 migrate``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Sequence
from typing import Any

import zstandard

from s4.codec import ChunkManifest, CodecDispatcher, CodecKind, CpuCodecPool, ZstdDictionary
from s4.codec.policy import FramePolicy
from s4.codec.stream import decode_body_stream
from s4.store.base import ObjectAttributes, ObjectStore, StoreError
from s4.store.compressing.encoding import BodyEncoder
from s4.store.compressing.reserved import DICTIONARY_PREFIX, is_reserved
from s4.store.stats import StoreStats
from s4.store.walk import single_chunk, walk
from s4.tools.location import BucketUrl
from s4.tools.stored import ToolError

KiB = 1024
DEFAULT_DICT_SIZE = 16 * KiB
"""On 2-16 KiB JSON events and log excerpts, 16 KiB dictionaries beat 64 KiB and zstd's usual 110 KiB."""
DEFAULT_SAMPLES = 2000
MIN_SAMPLES = 20
HOLD_OUT = 5
"""One sample in this many is kept out of training, to measure the gain on objects the dictionary never saw."""


@dataclasses.dataclass
class TrainReport:
    bucket: str
    prefix: str
    candidates: int
    trained_on: int
    measured_on: int
    dict_id: str
    dict_bytes: int
    original_bytes: int
    """Of the held-out objects."""
    stored_plain: int
    """What the gateway stores for them with the settings' codec (cpu-zstd unless told otherwise)."""
    stored_dict: int
    """...and as cpu-zstd-dict with this dictionary."""
    codec: str
    stored_key: str | None = None
    bands: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    """The same figures per size band (a dictionary helps the smallest objects most)."""

    @property
    def gain(self) -> float:
        """How much smaller with the dictionary: 1 - dict/plain."""
        return 1 - self.stored_dict / self.stored_plain if self.stored_plain else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["gain"] = round(self.gain, 4)
        data["ratio_plain"] = round(self.original_bytes / self.stored_plain, 3) if self.stored_plain else None
        data["ratio_dict"] = round(self.original_bytes / self.stored_dict, 3) if self.stored_dict else None
        data["binding"] = self.binding
        return data

    @property
    def binding(self) -> dict[str, str] | None:
        """The gateway setting (``dictionaries:``) that stores new small PUTs under the prefix with this
        dictionary; None while the dictionary is not stored."""
        if self.stored_key is None:
            return None
        return {"bucket": self.bucket, "prefix": self.prefix, "id": self.dict_id}


async def sample_objects(
    store: ObjectStore,
    pool: CpuCodecPool,
    url: BucketUrl,
    min_size: int,
    max_size: int,
    count: int,
    seed: int,
    concurrency: int = 16,
) -> tuple[int, list[bytes]]:
    """Up to ``count`` objects of ``min_size``..``max_size`` stored bytes, chosen at random, as their
    original bytes (S4 objects decoded, every CRC checked); and how many there were to choose from."""
    found = [
        o.key
        async for o in walk(store, url.bucket, url.prefix)
        if not is_reserved(o.key) and min_size <= o.size <= max_size
    ]
    chosen = random.Random(seed).sample(found, min(count, len(found)))
    bodies: list[bytes | None] = [None] * len(chosen)
    work = iter(enumerate(chosen))

    async def worker() -> None:
        for i, key in work:
            bodies[i] = await _original(store, pool, url.bucket, key)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(found), [b for b in bodies if b is not None]  # in the sample's order: the same seed, the same split


async def _original(store: ObjectStore, pool: CpuCodecPool, bucket: str, key: str) -> bytes | None:
    try:
        stream = await store.get_object(bucket, key)
    except StoreError as exc:
        if exc.code == "NoSuchKey":
            return None
        raise
    try:
        manifest = ChunkManifest.from_metadata(stream.info.attributes.metadata)
        if manifest is not None and manifest.dict_id is not None:
            return None  # encoded with a dictionary already
        return b"".join([piece async for piece in decode_body_stream(stream.body, manifest, pool)])
    finally:
        await stream.aclose()


def train(samples: Sequence[bytes], size: int, level: int) -> ZstdDictionary:
    """A zstd dictionary of at most ``size`` bytes (zstd's COVER trainer)."""
    try:
        trained = zstandard.train_dictionary(size, list(samples), level=level)
    except zstandard.ZstdError as exc:
        raise ToolError(f"zstd could not train a dictionary on {len(samples)} samples: {exc}") from None
    return ZstdDictionary(trained.as_bytes())


async def stored_sizes(encoder: BodyEncoder, bodies: Sequence[bytes]) -> list[int]:
    """What the gateway stores for each of ``bodies`` through ``encoder`` (a whole PUT, framing included)."""
    sizes = []
    for body in bodies:
        _, stored = await encoder.encode(single_chunk(body), None, len(body))
        sizes.append(sum([len(piece) async for piece in stored]))
    return sizes


def size_bands(bodies: Sequence[bytes], plain: Sequence[int], with_dict: Sequence[int]) -> list[dict[str, Any]]:
    """Held-out figures per power-of-two size band (1-2 KiB, 2-4 KiB...)."""
    bands: dict[int, list[int]] = {}
    for body, p, d in zip(bodies, plain, with_dict, strict=True):
        band = bands.setdefault(max(len(body), 1).bit_length() - 1, [0, 0, 0, 0])
        band[0] += 1
        band[1] += len(body)
        band[2] += p
        band[3] += d
    return [
        {
            "band": f"{_size(1 << b)}-{_size(2 << b)}",
            "objects": n,
            "original_bytes": original,
            "stored_plain": p,
            "stored_dict": d,
            "gain": round(1 - d / p, 4) if p else 0.0,
        }
        for b, (n, original, p, d) in sorted(bands.items())
    ]


def _size(n: int) -> str:
    return f"{n // KiB} KiB" if n >= KiB else f"{n} B"


async def train_dict(
    store: ObjectStore,
    pool: CpuCodecPool,
    dispatcher: CodecDispatcher,
    policy: FramePolicy,
    url: BucketUrl,
    *,
    min_size: int = 256,
    max_size: int = 16 * KiB,
    samples: int = DEFAULT_SAMPLES,
    dict_size: int = DEFAULT_DICT_SIZE,
    level: int = 3,
    seed: int = 0,
    store_it: bool = True,
) -> tuple[TrainReport, ZstdDictionary]:
    candidates, bodies = await sample_objects(store, pool, url, min_size, max_size, samples, seed)
    if len(bodies) < MIN_SAMPLES:
        raise ToolError(
            f"{url}: {len(bodies)} objects of {min_size}..{max_size} bytes; at least {MIN_SAMPLES} are needed to train"
        )
    held_out = bodies[::HOLD_OUT]
    training = [b for i, b in enumerate(bodies) if i % HOLD_OUT]
    dictionary = await asyncio.to_thread(train, training, dict_size, level)
    plain = BodyEncoder(pool, dispatcher, policy, StoreStats())
    with_dict = BodyEncoder(
        pool.with_registry(pool.registry.with_dictionary(dictionary)),
        CodecDispatcher(CodecKind.CPU_ZSTD_DICT, dispatcher.mode, dispatcher.entropy_threshold),
        policy,
        StoreStats(),
    )
    report = TrainReport(
        bucket=url.bucket,
        prefix=url.prefix,
        candidates=candidates,
        trained_on=len(training),
        measured_on=len(held_out),
        dict_id=dictionary.dict_id,
        dict_bytes=len(dictionary.data),
        original_bytes=sum(len(b) for b in held_out),
        stored_plain=sum(plain_sizes := await stored_sizes(plain, held_out)),
        stored_dict=sum(dict_sizes := await stored_sizes(with_dict, held_out)),
        codec=dispatcher.default.wire_name,
    )
    report.bands = size_bands(held_out, plain_sizes, dict_sizes)
    if store_it:
        key = DICTIONARY_PREFIX + dictionary.dict_id
        await store.put_object(url.bucket, key, single_chunk(dictionary.data), ObjectAttributes())
        report.stored_key = key
    return report, dictionary


async def load_dictionary(store: ObjectStore, bucket: str, dict_id: str) -> ZstdDictionary:
    """The dictionary ``.s4dict/<dict_id>`` of the bucket, checked against its id."""
    try:
        stream = await store.get_object(bucket, DICTIONARY_PREFIX + dict_id)
    except StoreError as exc:
        raise ToolError(f"no dictionary {DICTIONARY_PREFIX}{dict_id} in {bucket}: {exc.code}") from None
    try:
        data = b"".join([chunk async for chunk in stream.body])
    finally:
        await stream.aclose()
    dictionary = ZstdDictionary(data)
    if dictionary.dict_id != dict_id:
        raise ToolError(f"{DICTIONARY_PREFIX}{dict_id} holds dictionary {dictionary.dict_id}")
    return dictionary


def format_train_report(report: TrainReport) -> str:
    data = report.to_dict()
    return "\n".join(
        [
            f"s3://{report.bucket}/{report.prefix}: {report.candidates} objects in range; "
            f"trained on {report.trained_on}, measured on {report.measured_on} held out",
            f"dictionary {report.dict_id}: {report.dict_bytes} bytes"
            + (f", stored as {report.stored_key}" if report.stored_key else " (not stored: --dry-run)"),
            f"held-out objects: {report.original_bytes} bytes; stored as {report.codec}: {report.stored_plain}"
            f" (ratio {data['ratio_plain']}); as cpu-zstd-dict: {report.stored_dict} (ratio {data['ratio_dict']})",
            f"gain: {report.gain:.1%} smaller with the dictionary",
            *(
                [
                    "bind it to new PUTs (gateway setting, then restart the gateways):",
                    f"  dictionaries: [{{bucket: {report.bucket!r}, prefix: {report.prefix!r},"
                    f" id: {report.dict_id!r}}}]",
                ]
                if report.binding
                else []
            ),
            *(
                f"  {b['band']:>13}: {b['objects']:>5} objects, {b['stored_plain']:>9} -> {b['stored_dict']:>9} bytes"
                f" ({b['gain']:.1%})"
                for b in report.bands
            ),
        ]
    )
