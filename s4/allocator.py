"""glibc's malloc, set for a process that moves bodies in large buffers.

Every 4 MiB frame a PUT gathers, every compressed frame and every socket piece of up to 1 MiB is a
fresh ``bytes`` object. By default glibc gives an allocation above its mmap threshold (which starts
at 128 KiB and moves with what was freed last) fresh pages from the kernel, and hands the top of a
heap back once more than twice that lies free there. Either way the next frame lands on pages the
kernel must fault in and zero again.

The settings are fixed once, here, before any worker process is forked (each inherits them). Until
2026-12-03 a second tuning in s4/gateway.py ran after this one and overrode it (32 MiB thresholds,
two arenas): the main arena, shared by more threads, was trimmed and grown again ~140 times per
six PUTs of 128 MiB, and a PUT faulted in 0.4-0.7 bytes of fresh pages per byte it carried. Side
by side (6 rounds, settings given as MALLOC_* variables, gateway CPU per GB of PUT): 128 MiB trim
and two arenas 0.943 (text) and 0.950 (binary) of that, faults ~0, the same 196 MiB peak resident;
without the arena bound 0.939/0.971 at 231 MiB peak. GETs fault little either way (0.95-1.05, noise).

Only on glibc, and only where the operator has set none of these through glibc's own environment
variables (``MALLOC_MMAP_THRESHOLD_``, ``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_TOP_PAD_``,
``MALLOC_ARENA_MAX``, or ``glibc.malloc.*`` in ``GLIBC_TUNABLES``), which then decide.
"""

from __future__ import annotations

import ctypes
import os
import platform
from collections.abc import Mapping

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
"""mallopt() parameters (glibc's malloc.h)."""
MMAP_THRESHOLD = 16 * 1024 * 1024
"""Allocations above this still get pages of their own: well above a frame (4 MiB, or its
compressed bound), within glibc's cap for the setting (32 MiB on 64-bit)."""
TRIM_THRESHOLD = 128 * 1024 * 1024
"""Free memory at the top of a heap that is kept rather than handed back. Above the 64 MiB of a thread
arena's heap, so those no longer shrink piecemeal: each arena that allocated frames may keep up to one
heap, and the main arena (grown with brk) is not trimmed between two PUTs. An operator short of memory
sets MALLOC_TRIM_THRESHOLD_ lower."""
ARENA_MAX = 2
"""Arenas at most. Each arena keeps its own free heap, one per thread that ever held a frame (loop,
codec, file and executor threads): without the bound a one-worker gateway once peaked at 589 MiB."""
OPERATOR_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "MALLOC_ARENA_MAX")
MALLOC_TUNABLES = "glibc.malloc."


def tune_allocator(env: Mapping[str, str] = os.environ, libc: object | None = None) -> bool:
    """Fix glibc's mmap and trim thresholds and its arena count for this process; False unless all
    three were taken.

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
    # mallopt answers 1 when it took the value; setting either threshold also stops glibc moving them.
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX))
    return all([bool(mallopt(param, value)) for param, value in settings])
