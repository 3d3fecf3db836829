"""``s4 estimate`` past its byte budget: the sample, the prefix of a large object, the scaling to the whole set."""

from __future__ import annotations

import asyncio
import random

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.codec.policy import FramePolicy
from s4.tools.estimate import local_candidates, plan, run_estimate

KiB, MiB = 1024, 1024 * 1024


def log_lines(size: int, seed: int) -> bytes:
    r = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += b"2026-11-23T21:00:00Z INFO id=%08d status=%d ms=%d\n" % (
            r.randrange(10**8),
            r.choice([200, 404, 500]),
            r.randrange(900),
        )
    return bytes(out[:size])


def estimate(paths, **options):
    async def run():
        async with CpuCodecPool(CodecRegistry.cpu_default()) as pool:
            return await run_estimate(
                local_candidates(paths), pool, CodecDispatcher(), FramePolicy(), source="t", progress=False, **options
            )

    return asyncio.run(run())


def test_a_sample_of_a_uniform_set_scales_to_the_whole(tmp_path):
    for i in range(120):
        (tmp_path / f"{i:03d}.log").write_bytes(log_lines(40 * KiB + i * 100, i))
    exact = estimate([tmp_path])
    sampled = estimate([tmp_path], budget=600 * KiB)
    assert exact.to_dict()["exact"] and not sampled.to_dict()["exact"]
    assert sampled.sampled_objects < 20 and sampled.sampled_bytes <= 700 * KiB
    assert sampled.original_bytes == exact.original_bytes
    assert abs(sampled.estimated_stored_bytes - exact.estimated_stored_bytes) < 0.05 * exact.estimated_stored_bytes
    assert sampled.rows()[0]["objects"] == 120


def test_a_large_object_is_read_in_whole_frames_from_its_start(tmp_path):
    path = tmp_path / "big.log"
    path.write_bytes(log_lines(14 * MiB, 1))
    exact = estimate([path])
    prefix = estimate([path], budget=MiB, object_cap=4 * MiB)
    assert prefix.sampled_bytes == 4 * MiB  # one whole 4 MiB frame, though the budget is 1 MiB
    assert abs(prefix.estimated_stored_bytes - exact.estimated_stored_bytes) < 0.05 * exact.estimated_stored_bytes


def test_the_plan_reads_everything_when_it_fits():
    class C:
        def __init__(self, size):
            self.size = size

    items = [C(10), C(20)]
    assert [(c.size, take) for c, take in plan(items, 100, 50, FramePolicy(), 0)] == [(10, 10), (20, 20)]
