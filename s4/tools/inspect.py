"""``s4 inspect``: what a stored body holds, frame by frame, and whether it checks out."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from s4.codec import (
    ChunkManifest,
    CodecError,
    CodecKind,
    CodecRegistry,
    FrameStreamReader,
    crc32c,
    crc32c_combine,
    decode_frame,
)
from s4.tools.stored import looks_framed, read_chunks


@dataclasses.dataclass
class PayloadReport:
    """One frame (framed bodies) or the single payload (unframed ones)."""

    offset: int
    codec: CodecKind
    original_size: int
    stored_size: int
    check: str
    """"ok", "BAD: <reason>", or "skipped: <reason>" when this node cannot run the codec."""
    crc32c: int | None = None
    """The frame header's CRC of its original bytes (None for an unframed payload)."""

    @property
    def ratio(self) -> float:
        return self.original_size / self.stored_size if self.stored_size else 0.0


@dataclasses.dataclass
class InspectReport:
    path: Path
    stored_size: int
    manifest: ChunkManifest | None
    framed: bool
    payloads: list[PayloadReport] = dataclasses.field(default_factory=list)
    problems: list[str] = dataclasses.field(default_factory=list)
    unavailable: list[str] = dataclasses.field(default_factory=list)

    @property
    def original_size(self) -> int:
        return sum(p.original_size for p in self.payloads)

    @property
    def ok(self) -> bool:
        return not self.problems


def inspect_body(path: Path, manifest: ChunkManifest | None, registry: CodecRegistry) -> InspectReport:
    framed = manifest.framed if manifest is not None else looks_framed(path)
    report = InspectReport(path, path.stat().st_size, manifest, framed)
    if framed:
        _inspect_frames(report, registry)
    elif manifest is not None:
        _inspect_unframed(report, manifest, registry)
    else:
        size = report.stored_size
        report.payloads.append(PayloadReport(0, CodecKind.PASSTHROUGH, size, size, "ok (no manifest: served as is)"))
    if manifest is not None and not report.unavailable and not report.problems:
        _check_totals(report, manifest)
    return report


def _inspect_frames(report: InspectReport, registry: CodecRegistry) -> None:
    length = report.manifest.compressed_size if report.manifest else None
    reader = FrameStreamReader(stream_length=length)
    try:
        for chunk in read_chunks(report.path):
            for frame in reader.feed(chunk):
                h = frame.header
                check = _check(lambda f=frame: decode_frame(registry, f.header, f.payload), report)
                report.payloads.append(
                    PayloadReport(frame.offset, h.codec, h.original_size, h.record_size, check, h.crc32c)
                )
        reader.finish()
    except CodecError as exc:
        report.problems.append(f"frame stream: {exc}")


def _inspect_unframed(report: InspectReport, manifest: ChunkManifest, registry: CodecRegistry) -> None:
    body = report.path.read_bytes()

    def decode() -> bytes:
        data = (
            body
            if manifest.codec is CodecKind.PASSTHROUGH
            else registry.decompress(manifest.codec, body, manifest.original_size)
        )
        if manifest.crc32c is not None and crc32c(data) != manifest.crc32c:
            raise CodecError.corrupt("CRC32C of the decoded body does not match s4-crc32c")
        return data

    check = _check(decode, report)
    report.payloads.append(PayloadReport(0, manifest.codec, manifest.original_size, len(body), check))


def _check(decode, report: InspectReport) -> str:
    try:
        decode()
    except CodecError as exc:
        if exc.is_corrupt:
            report.problems.append(str(exc))
            return f"BAD: {exc}"
        report.unavailable.append(str(exc))
        return f"skipped: {exc}"
    return "ok"


def _check_totals(report: InspectReport, manifest: ChunkManifest) -> None:
    if report.original_size != manifest.original_size:
        report.problems.append(
            f"frames hold {report.original_size} original bytes, s4-original-size says {manifest.original_size}"
        )
    if manifest.compressed_size is not None and report.stored_size != manifest.compressed_size:
        report.problems.append(
            f"body is {report.stored_size} bytes, s4-compressed-size says {manifest.compressed_size}"
        )
    if report.framed and manifest.crc32c is not None:
        whole = 0
        for p in report.payloads:
            whole = crc32c_combine(whole, p.crc32c or 0, p.original_size)
        if whole != manifest.crc32c:
            report.problems.append(f"frames' CRC32C combine to {whole}, s4-crc32c says {manifest.crc32c}")


def format_report(report: InspectReport) -> str:
    lines = [f"body: {report.path} ({report.stored_size} bytes)"]
    m = report.manifest
    if m is None:
        lines.append("manifest: none" + (" (framed by its magic)" if report.framed else " (served as is)"))
    else:
        meta = ", ".join(f"{k}={v}" for k, v in m.to_metadata().items())
        lines.append(f"manifest: {meta}")
    if report.payloads:
        kind = "frame" if report.framed else "payload"
        lines.append(f"{kind:>7} {'offset':>12} {'codec':<16} {'original':>12} {'stored':>12} {'ratio':>8}  check")
        for n, p in enumerate(report.payloads):
            lines.append(
                f"{n:>7} {p.offset:>12} {p.codec.wire_name:<16} {p.original_size:>12} {p.stored_size:>12}"
                f" {p.ratio:>8.2f}  {p.check}"
            )
    ratio = report.original_size / report.stored_size if report.stored_size else 0.0
    verdict = "ok" if report.ok and not report.unavailable else ("BAD" if not report.ok else "not fully checked")
    lines.append(
        f"total: {len(report.payloads)} {'frame(s)' if report.framed else 'payload(s)'},"
        f" {report.original_size} -> {report.stored_size} bytes, ratio {ratio:.2f}, {verdict}"
    )
    lines.extend(f"problem: {p}" for p in report.problems)
    return "\n".join(lines)
