"""``s4 decode``: a stored body back to its original bytes, or a one-line reason why not."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from s4.codec import ChunkManifest, CodecRegistry, decode_frame, iter_decoded, iter_frames
from s4.tools.stored import looks_framed, read_chunks


def decoded_pieces(body: Path, manifest: ChunkManifest | None, registry: CodecRegistry) -> Iterator[bytes]:
    """Verified original bytes, piece by piece; CodecError before anything unverified.

    Without metadata a body that starts like a frame stream is decoded frame by frame
    (each frame's size and CRC still checked); anything else is taken as never written
    by a gateway and comes out as it is, which is what the server does too.
    """
    if manifest is None and looks_framed(body):
        for frame in iter_frames(read_chunks(body)):
            yield decode_frame(registry, frame.header, frame.payload)
        return
    yield from iter_decoded(read_chunks(body), manifest, registry)


def write_decoded(pieces: Iterator[bytes], output: Path | None) -> int:
    """Write to ``output`` atomically (temp file, then rename), or stream to stdout.

    A file is renamed into place only after every check passed, so a failed decode
    leaves nothing behind. On stdout only frames already verified are written; a
    failure there is reported through the exit status.
    """
    if output is None:
        return _copy(pieces, sys.stdout.buffer)
    directory = output.resolve().parent
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            written = _copy(pieces, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, output)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written


def _copy(pieces: Iterator[bytes], out: BinaryIO) -> int:
    written = 0
    for piece in pieces:
        out.write(piece)
        written += len(piece)
    out.flush()
    return written
