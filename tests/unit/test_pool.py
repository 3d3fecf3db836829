import asyncio
import threading
import time

import pytest

from s4.codec import CodecError, CodecKind, CodecRegistry, CpuCodecPool, FrameHeader
from s4.codec.base import Codec

TEXT = b"pool test data " * 10_000


class SlowCodec(Codec):
    """Counts how many calls run at once, to observe the pool's bound."""

    kind = CodecKind.CPU_ZSTD

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.peak = 0

    def compress(self, data):
        with self.lock:
            self.running += 1
            self.peak = max(self.peak, self.running)
        time.sleep(0.02)
        with self.lock:
            self.running -= 1
        return b"z"

    def decompress(self, payload, original_size):
        raise NotImplementedError


def test_compress_and_decompress_round_trip():
    async def main():
        async with CpuCodecPool(CodecRegistry.cpu_default(), workers=2) as pool:
            payload = await pool.compress(CodecKind.CPU_ZSTD, TEXT)
            assert await pool.decompress(CodecKind.CPU_ZSTD, payload, len(TEXT)) == TEXT
            frame = await pool.encode_frame(CodecKind.CPU_ZSTD, TEXT)
            assert await pool.decode_frame(frame.header, frame.payload) == TEXT

    asyncio.run(main())


def test_frames_in_flight_are_bounded():
    codec = SlowCodec()
    registry = CodecRegistry([codec])

    async def main():
        pool = CpuCodecPool(registry, workers=8, max_in_flight=3, inline_limit=0)
        observed = []

        async def one():
            await pool.compress(CodecKind.CPU_ZSTD, b"x")
            observed.append(pool.in_flight)

        await asyncio.gather(*(one() for _ in range(30)))
        pool.close()
        return observed

    observed = asyncio.run(main())
    assert codec.peak <= 3
    assert codec.peak == 3  # the bound is reached, so the test can see a broken one
    assert max(observed) <= 3


def test_cancelled_callers_do_not_free_slots_early():
    codec = SlowCodec()
    registry = CodecRegistry([codec])

    async def main():
        pool = CpuCodecPool(registry, workers=8, max_in_flight=2, inline_limit=0)
        tasks = [asyncio.create_task(pool.compress(CodecKind.CPU_ZSTD, b"x")) for _ in range(2)]
        await asyncio.sleep(0.005)
        for t in tasks:
            t.cancel()
        # The two threads still run; new work must wait for them, not add to them.
        await asyncio.gather(*(pool.compress(CodecKind.CPU_ZSTD, b"x") for _ in range(4)))
        pool.close()

    asyncio.run(main())
    assert codec.peak <= 2


def test_errors_come_back_typed():
    async def main():
        async with CpuCodecPool(CodecRegistry.cpu_default(), workers=1, inline_limit=0) as pool:
            with pytest.raises(CodecError) as info:
                await pool.decode_frame(FrameHeader(CodecKind.CPU_ZSTD, 5, 3, 0), b"abc")
            assert info.value.is_corrupt
            with pytest.raises(CodecError) as info:
                await pool.compress(CodecKind.NVCOMP_GANS, b"abc")
            assert not info.value.is_corrupt
            assert pool.in_flight == 0

    asyncio.run(main())


def test_work_runs_in_parallel_off_the_event_loop():
    async def main():
        async with CpuCodecPool(CodecRegistry.cpu_default(), workers=2) as pool:
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.001)
                    ticks += 1

            t = asyncio.create_task(ticker())
            await asyncio.gather(*(pool.compress(CodecKind.CPU_ZSTD, TEXT * 20) for _ in range(8)))
            t.cancel()
            return ticks

    assert asyncio.run(main()) > 0  # the loop kept turning while frames compressed


def test_small_work_runs_on_the_calling_thread_and_large_work_on_a_worker():
    """A thread hop costs more than a small frame's codec work: below INLINE_LIMIT bytes it stays here,
    if the codec says it compresses that fast; a codec that does not (the default) always gets a thread."""
    from s4.codec.pool import INLINE_LIMIT

    threads: list[str] = []

    class WhereCodec(SlowCodec):
        inline_compress_limit = INLINE_LIMIT

        def compress(self, data):
            threads.append(threading.current_thread().name)
            return b"z"

    class SlowLevelCodec(WhereCodec):
        kind = CodecKind.CPU_GZIP
        inline_compress_limit = 0

    async def main():
        async with CpuCodecPool(CodecRegistry([WhereCodec(), SlowLevelCodec()]), workers=1) as pool:
            await pool.compress(CodecKind.CPU_ZSTD, b"x" * (INLINE_LIMIT - 1))
            await pool.compress(CodecKind.CPU_ZSTD, b"x" * INLINE_LIMIT)
            await pool.compress(CodecKind.CPU_GZIP, b"x")

    asyncio.run(main())
    assert threads[0] == threading.main_thread().name
    assert threads[1].startswith("s4-codec")
    assert threads[2].startswith("s4-codec")


def test_a_device_codec_never_decodes_on_the_event_loop():
    """DietGPU-like codecs copy to a device and may wait for a batch's lock: small frames too go to a thread."""
    threads: list[str] = []

    class DeviceLike(SlowCodec):
        kind = CodecKind.CPU_GZIP
        device = "cuda:0"

        def decompress(self, payload, original_size):
            threads.append(threading.current_thread().name)
            return b"x" * original_size

    class CpuLike(DeviceLike):
        kind = CodecKind.CPU_ZSTD
        device = "cpu"

    async def main():
        async with CpuCodecPool(CodecRegistry([DeviceLike(), CpuLike()]), workers=1) as pool:
            await pool.decompress(CodecKind.CPU_GZIP, b"p", 10)
            await pool.decompress(CodecKind.CPU_ZSTD, b"p", 10)

    asyncio.run(main())
    assert threads[0].startswith("s4-codec")
    assert threads[1] == threading.main_thread().name


def test_only_fast_zstd_levels_compress_inline():
    """Level 19 takes milliseconds on 16 KiB: never on the event loop."""
    from s4.codec.base import FAST_INLINE_COMPRESS
    from s4.codec.cpu.gzip import CpuGzipCodec
    from s4.codec.cpu.zstd import CpuZstdCodec

    assert CpuZstdCodec(level=3).inline_compress_limit == FAST_INLINE_COMPRESS
    assert CpuZstdCodec(level=-5).inline_compress_limit == FAST_INLINE_COMPRESS
    assert CpuZstdCodec(level=4).inline_compress_limit == 0
    assert CpuZstdCodec(level=19).inline_compress_limit == 0
    assert CpuGzipCodec().inline_compress_limit == 0


def test_small_frames_decode_inline_with_the_same_checks():
    """Inline, a corrupt small frame is refused as it was on a worker, and a good one decodes."""

    async def main():
        async with CpuCodecPool(CodecRegistry.cpu_default(), workers=1) as pool:
            frame = await pool.encode_frame(CodecKind.CPU_ZSTD, b"small frame " * 100)
            assert await pool.decode_frame(frame.header, frame.payload) == b"small frame " * 100
            with pytest.raises(CodecError) as info:
                await pool.decode_frame(FrameHeader(CodecKind.CPU_ZSTD, 5, 3, 0), b"abc")
            assert info.value.is_corrupt
            assert pool.in_flight == 0

    asyncio.run(main())
