"""glibc's malloc, set for a process that moves bodies in large buffers.

Every 4 MiB frame a PUT gathers, every compressed frame and every socket piece of up to 256 KiB
is a fresh ``bytes`` object. By default glibc gives an allocation above its mmap threshold (which
starts at 128 KiB and moves with what was freed last) fresh pages from the kernel, and hands the
top of a heap back once more than twice that lies free there. Either way the next frame lands on
pages the kernel must fault in and zero again: ``perf`` put page faults at about 3% of a text
PUT's CPU, and fixed thresholds took 1-3% off a PUT's CPU per GB (benchmarks/scale_bench.py, see
docs/BENCHMARKS.md) for 20-40 MiB more resident memory, the freed frames kept for reuse.

Only on glibc, and only where the operator has not set these through glibc's own environment
variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``, or
``glibc.malloc.*`` in ``GLIBC_TUNABLES``), which then decide. Set before the worker processes are
forked, so each inherits it.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 * 1024 * 1024
"""Allocations above this still get pages of their own: well above a frame (4 MiB, or its
compressed bound), within glibc's cap for the setting (32 MiB on 64-bit)."""
TRIM_THRESHOLD = 128 * 1024 * 1024
"""Free memory at the top of a heap that is kept rather than handed back. Above the 64 MiB of a thread
arena's heap, so those no longer shrink piecemeal: each arena that allocated frames may keep up to one
heap. Side by side (text PUT, 5 rounds), 128 MiB took 4% more off a PUT's CPU than 32 MiB, for 38 MiB
more resident memory; an operator short of memory sets MALLOC_TRIM_THRESHOLD_ lower."""
OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")
MALLOC_TUNABLES = "glibc.malloc."


def tune_allocator(env: Mapping[str, str] = os.environ, libc: object | None = None) -> bool:
    """Fix glibc's mmap and trim thresholds for this process; False when not both were taken.

    ``libc`` is the C library to call (tests pass a stand-in); by default this process's own.
    """
    if any(name in env for name in OPERATOR_SETTINGS) or MALLOC_TUNABLES in env.get("GLIBC_TUNABLES", ""):
        return False
    if libc is None:
        if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
            return False
        try:
            libc = ctypes.CDLL(None)
        except OSError:
            return False
    mallopt = getattr(libc, "mallopt", None)
    if mallopt is None:
        return False
    # mallopt answers 1 when it took the value; setting either one also stops glibc moving them.
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
