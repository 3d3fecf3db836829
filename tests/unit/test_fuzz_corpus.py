"""Replays tests/fuzz_corpus: every input that once found a bug, and the seeds, through its fuzz target.

Each file goes through the same target (and so the same property) the fuzzers use, under
tracemalloc: whatever the input claims, a parser may allocate only in proportion to
what it was given. The file name adds an expectation (see tests/fuzz_corpus/README.md):
``valid-*`` must be accepted, ``bug-*-accepted`` (inputs once wrongly accepted) refused.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.unit import test_fuzz_codec_parsers as codec
from tests.unit import test_fuzz_server_parsers as server
from tests.unit.fuzz_support import CORPUS, MiB, corpus_files, measure

TARGETS: dict[str, Callable[[bytes], bool]] = {
    "addressing": server.target_addressing,
    "auth": server.target_auth,
    "chunked": server.target_chunked,
    "headers": server.target_headers,
    "payload": server.target_payload,
    "range": server.target_range,
    "xml": server.target_xml,
    "fcg1": codec.target_fcg1,
    "manifest": codec.target_manifest,
    "s4f2_body": codec.target_s4f2_body,
    "s4f2_stream": codec.target_s4f2_stream,
    "s4ix": codec.target_s4ix,
}
CASES = [(target, path) for target in sorted(TARGETS) for path in corpus_files(target)]


def test_every_corpus_folder_has_a_target_and_every_target_a_corpus():
    folders = {p.name for p in CORPUS.iterdir() if p.is_dir()}
    assert folders == set(TARGETS)
    for target in TARGETS:
        names = [p.name for p in corpus_files(target)]
        assert any(n.startswith("valid-") for n in names), f"{target} has no valid-* input"
        assert all(n.startswith(("bug-", "seed-", "valid-")) for n in names), names


@pytest.mark.parametrize(("target", "path"), CASES, ids=[f"{t}/{p.name}" for t, p in CASES])
def test_corpus_input(target: str, path: Path):
    data = path.read_bytes()
    measured = measure(lambda: TARGETS[target](data))
    if measured.error is not None:
        raise measured.error
    assert measured.peak_bytes < 64 * len(data) + 8 * MiB, f"{measured.peak_bytes / MiB:.1f} MiB"
    if path.name.startswith("valid-"):
        assert measured.result is True, "a valid input was refused"
    if path.name.startswith("bug-") and path.name.endswith("-accepted"):
        assert measured.result is False, "an input that was wrongly accepted is accepted again"
