"""The CPU codec pool: codec work off the event loop, with a bound on frames in flight.

zstd, zlib and the CRC release the GIL, so threads give real parallelism. The bound
is the back-pressure: a request that produces frames faster than the cores compress
them waits in ``await`` instead of queueing unbounded memory. A slot is freed when
the thread finishes, not when the caller stops waiting, so cancelled requests cannot
push the number of frames in memory past the bound.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
from collections.abc import Callable
from typing import TypeVar

from s4.codec.buffer import Buffer
from s4.codec.format.frame import FrameHeader
from s4.codec.format.kinds import CodecKind
from s4.codec.frame_codec import EncodedFrame, decode_frame, encode_frame
from s4.codec.registry import CodecRegistry

T = TypeVar("T")

INLINE_LIMIT = 64 * 1024
"""Frames below this many bytes (in and out) are decoded on the calling thread instead of a worker
when their codec runs on the CPU (a device codec, DietGPU, always gets a thread), and compressed there
too when their codec says it is that fast (Codec.inline_compress_limit: zstd at level 3 or below,
under 16 KiB).

Handing a frame to a thread and awaiting it costs ~55-60 us of CPU (the submit, the worker's wake-up,
the future's callback into the loop): more than decoding 64 KiB takes (zstd ~15-40 us, zlib ~95 us).
Measured by awaiting the pool against calling encode_frame/decode_frame directly, 2000 calls each on
1 KB to 64 KiB frames. Every small object's PUT and GET paid that hop. Strictly below: frames of the
smallest size the configuration allows (64 KiB) still go to the threads, which run them in parallel.
"""


class CpuCodecPool:
    def __init__(
        self,
        registry: CodecRegistry,
        workers: int | None = None,
        max_in_flight: int | None = None,
        inline_limit: int = INLINE_LIMIT,
    ) -> None:
        self.registry = registry
        self.inline_limit = inline_limit
        self.workers = workers or os.cpu_count() or 1
        self.max_in_flight = max_in_flight or 2 * self.workers
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be at least 1")
        self._executor = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="s4-codec")
        self._slots = asyncio.Semaphore(self.max_in_flight)
        self._in_flight = [0]  # shared with with_registry() views

    def with_registry(self, registry: CodecRegistry) -> CpuCodecPool:
        """The same threads and the same bound, running another registry's codecs.

        Objects compressed with a dictionary need a registry that knows it; they must
        not get threads of their own or escape the pool's bound on frames in flight.
        """
        view = object.__new__(CpuCodecPool)
        view.__dict__.update(self.__dict__)
        view.registry = registry
        return view

    @property
    def in_flight(self) -> int:
        """Frames handed to threads and not yet finished."""
        return self._in_flight[0]

    async def compress(self, kind: CodecKind, data: Buffer) -> bytes:
        return await self._call(self._compress_limit(kind), len(data), self.registry.compress, kind, data)

    async def decompress(self, kind: CodecKind, payload: Buffer, original_size: int) -> bytes:
        size = max(len(payload), original_size)
        return await self._call(
            self._decompress_limit(kind), size, self.registry.decompress, kind, payload, original_size
        )

    async def encode_frame(self, kind: CodecKind, data: Buffer) -> EncodedFrame:
        """Compress, CRC and passthrough fallback for one frame, all in the worker thread (or inline)."""
        return await self._call(self._compress_limit(kind), len(data), encode_frame, self.registry, kind, data)

    async def decode_frame(self, header: FrameHeader, payload: Buffer) -> bytes:
        """Decode and verify one frame in a worker thread (or inline, if small)."""
        size = max(len(payload), header.original_size)
        return await self._call(
            self._decompress_limit(header.codec), size, decode_frame, self.registry, header, payload
        )

    def _decompress_limit(self, kind: CodecKind) -> int:
        """Decoding on a CPU is fast at any level; a device codec (DietGPU) copies to the device, syncs
        and may wait for a lock a batch holds: never on the event loop."""
        if not self.registry.is_available(kind) or self.registry.get(kind).device != "cpu":
            return 0
        return self.inline_limit

    def _compress_limit(self, kind: CodecKind) -> int:
        if not self.registry.is_available(kind):
            return 0  # the thread raises what it always raised
        return min(self.inline_limit, self.registry.get(kind).inline_compress_limit)

    async def _call(self, limit: int, size: int, fn: Callable[..., T], *args: object) -> T:
        """``fn(*args)`` right here when it works on fewer than ``limit`` bytes, else on a worker thread."""
        if size < limit:
            return fn(*args)
        return await self._run(fn, *args)

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        await self._slots.acquire()
        try:
            future = self._executor.submit(fn, *args)
        except BaseException:
            self._slots.release()
            raise
        self._in_flight[0] += 1
        future.add_done_callback(lambda _: self._release_from_thread(loop))
        return await asyncio.wrap_future(future)

    def _release_from_thread(self, loop: asyncio.AbstractEventLoop) -> None:
        # A closed loop has nobody left waiting for a slot.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(self._release)

    def _release(self) -> None:
        self._in_flight[0] -= 1
        self._slots.release()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def __aenter__(self) -> CpuCodecPool:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self.close)
