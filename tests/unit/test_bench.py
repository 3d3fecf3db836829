"""The benchmark runs and reports sane shapes; its figures are never asserted (they are not tests)."""

import json
import subprocess
import sys

from s4.bench import codecs as bench
from s4.bench.corpus import Sample, default_corpus


def test_default_corpus_finds_real_files():
    samples = default_corpus(limit=256 * 1024)
    assert [s.name for s in samples] == ["text", "binary", "compressed"]
    assert all(len(s.data) > 10_000 for s in samples)


def test_run_produces_a_row_per_codec_and_a_raw_baseline():
    text = Sample("text", b"".join(b"row %d, value %d\n" % (i, i * 7) for i in range(20_000)), "generated")
    rows = bench.run([text], frame_size=64 * 1024, rounds=1, threads=2)
    names = [(r.codec, r.level) for r in rows]
    for kind, level in bench.DEFAULT_PLAN:
        assert (kind.wire_name, level) in names
    assert ("raw-zstandard", 3) in names
    zstd3 = next(r for r in rows if (r.codec, r.level) == ("cpu-zstd", 3))
    assert zstd3.ratio > 3 and zstd3.compress_1t > 0 and zstd3.decompress_nt > 0
    assert {o["level"] for o in bench.overheads(rows)} == {1, 3, 9}
    assert "raw-zstandard" in bench.format_rows(rows, 2)


def test_cli_json(tmp_path):
    f = tmp_path / "sample.txt"
    f.write_bytes(b"hello benchmark " * 50_000)
    r = subprocess.run(
        [sys.executable, "-m", "s4", "bench", "codecs", str(f), "--rounds", "1", "--frame-mib", "1", "--json"],
        capture_output=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)
    assert {row["sample"] for row in report["rows"]} == {"sample.txt"}
    assert report["overheads"]
