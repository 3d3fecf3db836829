"""Shared machinery of the parser fuzz tests: example budgets, byte mutations, and bounds on time and memory.

The fuzz tests run in CI on every change, so each one gets a small example budget that
keeps all of them together well under a minute on a two-core machine. Longer local
campaigns raise every budget at once with ``S4_FUZZ_EXAMPLES=<n>`` (examples per test).
"""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CORPUS = Path(__file__).resolve().parent.parent / "fuzz_corpus"
"""tests/fuzz_corpus/<target>/<name>: seeds and the inputs that once found a bug, replayed forever."""

DEADLINE_MS = 2000
"""Per-example deadline: the parsers take well under 10 ms on these inputs; only a hang comes near this,
and the margin keeps a busy shared CI machine from reporting a flaky deadline."""


def examples(default: int) -> int:
    """The example budget of one fuzz test: ``default`` in CI, ``S4_FUZZ_EXAMPLES`` when set."""
    override = os.environ.get("S4_FUZZ_EXAMPLES")
    return int(override) if override else default


def fuzz_settings(default_examples: int, deadline_ms: int = DEADLINE_MS) -> settings:
    """Hypothesis settings for a parser fuzz test: bounded examples, a hang-catching deadline."""
    return settings(
        max_examples=examples(default_examples),
        deadline=deadline_ms,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


# --- structured mutations ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Edit:
    """One change to a byte string; positions are taken modulo the length at the time it applies."""

    op: str
    pos: int
    arg: int
    data: bytes

    def apply(self, buf: bytearray) -> None:
        n = len(buf)
        if self.op == "insert":
            at = self.pos % (n + 1)
            buf[at:at] = self.data
            return
        if not n:
            return
        at = self.pos % n
        if self.op == "flip":
            buf[at] ^= 1 << (self.arg % 8)
        elif self.op == "set":
            buf[at] = self.arg % 256
        elif self.op == "delete":
            del buf[at : at + 1 + self.arg % 16]
        elif self.op == "truncate":
            del buf[at:]
        elif self.op == "duplicate":
            piece = bytes(buf[at : at + 1 + self.arg % 64])
            buf[at:at] = piece
        elif self.op == "swap":
            other = self.arg % n
            buf[at], buf[other] = buf[other], buf[at]


INTERESTING_BYTES = b"\x00\x01\x7f\x80\xff\r\n;:=-/%\t "


def edits(max_edits: int = 3) -> st.SearchStrategy[list[Edit]]:
    """Small lists of edits: most mutated inputs stay close enough to valid to reach deep parser states."""
    edit = st.builds(
        Edit,
        op=st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate", "swap"]),
        pos=st.integers(0, 2**20),
        arg=st.one_of(st.integers(0, 255), st.sampled_from(list(INTERESTING_BYTES))),
        data=st.one_of(st.binary(min_size=1, max_size=8), st.sampled_from([b"\r\n", b"0", b";", b"\x00" * 4])),
    )
    return st.lists(edit, min_size=1, max_size=max_edits)


def mutate(base: bytes, changes: list[Edit]) -> bytes:
    buf = bytearray(base)
    for change in changes:
        change.apply(buf)
    return bytes(buf)


def mutations(base: bytes, max_edits: int = 3) -> st.SearchStrategy[bytes]:
    """``base`` with a few edits applied; may (rarely) give ``base`` back unchanged."""
    return edits(max_edits).map(lambda changes: mutate(base, changes))


# --- bounds -----------------------------------------------------------------------------------------------


@dataclass
class Measured:
    """What one call did within its bounds: its result or exception, peak traced allocation, wall time."""

    result: Any
    error: BaseException | None
    peak_bytes: int
    seconds: float


def measure(call: Callable[[], Any], trace_memory: bool = True) -> Measured:
    """Run ``call``, catching what it raises so the caller can assert on both.

    tracemalloc slows allocation-heavy code several times over, so timing checks turn it
    off (``trace_memory=False``, peak then reads 0).
    """
    if trace_memory:
        tracemalloc.start()
        tracemalloc.reset_peak()
    started = time.perf_counter()
    result: Any = None
    error: BaseException | None = None
    peak = 0
    try:
        result = call()
    except Exception as exc:  # the caller decides which exceptions were allowed
        error = exc
    finally:
        seconds = time.perf_counter() - started
        if trace_memory:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    return Measured(result, error, peak, seconds)


MiB = 1024 * 1024


def corpus_files(target: str) -> list[Path]:
    folder = CORPUS / target
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []
