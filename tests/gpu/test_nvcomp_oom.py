"""Out of device memory on a real GPU: a batch too large is split until it fits, a frame that never fits is
compressed on the CPU instead (cpu-zstd), and every frame still reads back (issue 17's goal: OOM split and CPU
fallback exercised with a small device-memory budget).

The budget is CuPy's memory-pool limit, which every device buffer of the nvCOMP backend comes from. It is set in
a child process of its own, so no other test's buffers count against it and no other test runs under it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu

REPO = Path(__file__).resolve().parents[2]
CHILD = r"""
import asyncio, json, sys
import cupy
from s4.codec import CodecKind, CodecRegistry
from s4.codec.gpu.setup import GpuSettings, setup_gpu
from tests.gpu.test_nvcomp_gpu import compressible

MiB = 1024 * 1024
cupy.get_default_memory_pool().set_limit(size=int(sys.argv[1]) * MiB)
registry = CodecRegistry.cpu_default()
setup = setup_gpu(registry, GpuSettings(mode="on", streams=1, batch_bytes=64 * MiB, batch_wait_ms=50))
pool = setup.pool(registry)
small = [compressible(8 * MiB, i) for i in range(8)]
big = compressible(64 * MiB, 99)

async def main():
    frames = await asyncio.gather(*(pool.encode_frame(CodecKind.NVCOMP_ZSTD, d) for d in small))
    after_small = (pool.engine.stats.oom_batches, pool.engine.stats.oom_splits)
    big_frame = await pool.encode_frame(CodecKind.NVCOMP_ZSTD, big)
    back = await asyncio.gather(*(pool.decode_frame(f.header, f.payload) for f in [*frames, big_frame]))
    return frames, big_frame, back, after_small

frames, big_frame, back, after_small = asyncio.run(main())
stats = pool.engine.stats
print(json.dumps({
    "small_codecs": [f.header.codec.wire_name for f in frames],
    "big_codec": big_frame.header.codec.wire_name,
    "all_equal": back == [*small, big],
    "oom_after_small": after_small,
    "oom_batches": stats.oom_batches,
    "oom_splits": stats.oom_splits,
    "failed_frames": stats.failed_frames,
    "cpu_fallback_frames": pool.gpu_stats.cpu_fallback_frames,
}))
pool.close()
"""


def test_a_small_device_memory_budget_splits_batches_and_falls_back_to_the_cpu():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    r = subprocess.run(
        [sys.executable, "-c", CHILD, "110"], capture_output=True, text=True, env=env, cwd=REPO, timeout=240
    )
    assert r.returncode == 0, r.stderr[-4000:]
    seen = json.loads(r.stdout.strip().splitlines()[-1])
    # 8 frames of 8 MiB in one 64 MiB batch do not fit in 110 MiB (input and output buffers): split, then on the GPU.
    assert seen["oom_after_small"][0] >= 1 and seen["oom_after_small"][1] >= 1, seen
    assert seen["small_codecs"] == ["nvcomp-zstd"] * 8, seen
    # One 64 MiB frame never fits: compressed on the CPU instead, as cpu-zstd.
    assert seen["big_codec"] == "cpu-zstd" and seen["cpu_fallback_frames"] >= 1, seen
    assert seen["all_equal"], seen
