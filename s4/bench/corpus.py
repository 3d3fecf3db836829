"""The default benchmark corpus: real files every machine with Python has."""

from __future__ import annotations

import dataclasses
import sys
import sysconfig
from pathlib import Path

import zstandard

DEFAULT_MAX_BYTES = 16 * 1024 * 1024


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    source: str


def _gather(paths: list[Path], limit: int) -> bytes:
    out = bytearray()
    seen: set[Path] = set()
    for path in paths:
        real = path.resolve()
        if real in seen:  # libpython3.11.so is usually a link to libpython3.11.so.1.0
            continue
        seen.add(real)
        if len(out) >= limit:
            break
        try:
            out += path.read_bytes()[: limit - len(out)]
        except OSError:
            continue
    return bytes(out)


def stdlib_text(limit: int = DEFAULT_MAX_BYTES) -> Sample:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in stdlib.rglob("*.py") if "site-packages" not in p.parts)
    return Sample("text", _gather(files, limit), f"{stdlib}/**/*.py")


def interpreter_binaries(limit: int = DEFAULT_MAX_BYTES) -> Sample:
    libdir = Path(sysconfig.get_config_var("LIBDIR") or sys.prefix)
    dynload = Path(sysconfig.get_paths()["stdlib"]) / "lib-dynload"
    files = sorted(libdir.glob("libpython*.so*")) + sorted(dynload.glob("*.so"))
    files.append(Path(sys.executable).resolve())
    return Sample("binary", _gather(files, limit), f"{libdir}/libpython*, {dynload}/*.so")


def already_compressed(limit: int = DEFAULT_MAX_BYTES) -> Sample:
    """ensurepip's bundled wheels are zip files; failing that, zstd output stands in."""
    bundled = Path(sysconfig.get_paths()["stdlib"]) / "ensurepip" / "_bundled"
    wheels = sorted(bundled.glob("*.whl"))
    data = _gather(wheels, limit)
    if data:
        return Sample("compressed", data, f"{bundled}/*.whl")
    text = stdlib_text(limit * 4).data
    return Sample("compressed", zstandard.ZstdCompressor(level=19).compress(text)[:limit], "zstd -19 of text")


def default_corpus(limit: int = DEFAULT_MAX_BYTES) -> list[Sample]:
    return [stdlib_text(limit), interpreter_binaries(limit), already_compressed(limit)]


def files_corpus(paths: list[Path], limit: int = DEFAULT_MAX_BYTES) -> list[Sample]:
    return [Sample(p.name, p.read_bytes()[:limit], str(p)) for p in paths]
