"""Coverage-guided fuzzing of the request and stored-data parsers with atheris (libFuzzer for Python).

Not part of CI and not a project dependency: hypothesis covers the same targets there.
This harness runs the very same ``target_*`` functions (and so the same properties) as
the hypothesis tests and the corpus replay, but lets libFuzzer's coverage feedback steer
the inputs, which finds paths that random structure misses. Install atheris into a
scratch environment that can also import the project, for example::

    python3.11 -m venv /tmp/fuzzvenv && /tmp/fuzzvenv/bin/pip install atheris
    printf '%s\n' "$PWD/.venv/lib/python3.11/site-packages" "$PWD" \\
        > /tmp/fuzzvenv/lib/python3.11/site-packages/s4-project.pth
    /tmp/fuzzvenv/bin/python fuzz/atheris_fuzz.py chunked --seconds 120

It starts from a scratch copy of tests/fuzz_corpus/<target> (libFuzzer adds every input
that reaches new code to its corpus, which would bloat the checked-in one), and writes
any input that crashes, hangs (``-timeout``) or blows the memory limit into
tests/fuzz_corpus/<target>/ as ``bug-atheris-*``, where test_fuzz_corpus.py replays it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import atheris

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# Instrument the parsers themselves; the test helpers and libraries stay uninstrumented.
with atheris.instrument_imports(include=["s4"]):
    import s4.codec.body
    import s4.codec.format.fcg1
    import s4.codec.format.frame
    import s4.codec.format.index
    import s4.codec.format.manifest
    import s4.server.addressing
    import s4.server.auth.sigv2
    import s4.server.auth.sigv4
    import s4.server.body.checksums
    import s4.server.body.chunked
    import s4.server.body.verified
    import s4.server.http
    import s4.server.xml  # noqa: F401  (imported for instrumentation)

from tests.unit.fuzz_support import CORPUS  # noqa: E402
from tests.unit.test_fuzz_corpus import TARGETS  # noqa: E402

MAX_LEN = {"auth": 2048, "xml": 4096, "chunked": 4096, "s4f2_body": 8192, "s4f2_stream": 4096}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", choices=sorted(TARGETS))
    parser.add_argument("--seconds", type=int, default=120, help="how long to fuzz")
    parser.add_argument("libfuzzer", nargs="*", help="extra libFuzzer flags, after --")
    args = parser.parse_args()
    target = TARGETS[args.target]
    seeds = CORPUS / args.target
    work = Path(tempfile.mkdtemp(prefix=f"s4-atheris-{args.target}-"))
    for seed in seeds.iterdir():
        if seed.is_file():
            shutil.copy(seed, work / seed.name)

    def test_one_input(data: bytes) -> None:
        target(data)

    flags = [
        sys.argv[0],
        str(work),
        f"-max_total_time={args.seconds}",
        f"-max_len={MAX_LEN.get(args.target, 1024)}",
        "-timeout=10",
        "-rss_limit_mb=4096",
        f"-artifact_prefix={seeds}/bug-atheris-",
        "-print_final_stats=1",
        *args.libfuzzer,
    ]
    atheris.Setup(flags, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
