"""Typed codec failures.

The compressing store turns each kind into a StoreError kind, which the server maps to an
S3 error (corrupt data is a 500 with the key logged, an unavailable codec a 503 naming it,
OOM a retry on another device), so the kind is part of the error rather than a message
to be parsed.
"""

from __future__ import annotations

import enum


class CodecErrorKind(enum.Enum):
    CORRUPT = "corrupt"
    """Stored bytes are malformed: bad framing, sizes that lie, a CRC mismatch."""
    UNAVAILABLE = "unavailable"
    """The codec cannot run on this node (no GPU, library missing, no dictionary)."""
    BACKEND = "backend"
    """The codec library itself failed on input it should have accepted."""
    OUT_OF_MEMORY = "out-of-memory"
    """The device or host ran out of memory; the caller may split and retry elsewhere."""


class CodecError(Exception):
    """The only exception the codec layer lets escape for bad input or a failed codec."""

    def __init__(self, kind: CodecErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __str__(self) -> str:
        return self.message

    @classmethod
    def corrupt(cls, message: str) -> CodecError:
        return cls(CodecErrorKind.CORRUPT, message)

    @classmethod
    def unavailable(cls, message: str) -> CodecError:
        return cls(CodecErrorKind.UNAVAILABLE, message)

    @classmethod
    def backend(cls, message: str) -> CodecError:
        return cls(CodecErrorKind.BACKEND, message)

    @classmethod
    def out_of_memory(cls, message: str) -> CodecError:
        return cls(CodecErrorKind.OUT_OF_MEMORY, message)

    @property
    def is_corrupt(self) -> bool:
        return self.kind is CodecErrorKind.CORRUPT


_OOM_MARKERS = (
    "out of memory",  # torch, CUDA runtime messages, nvCOMP status text
    "outofmemory",  # cupy.cuda.memory.OutOfMemoryError, nvcompStatusOutOfMemory
    "memoryallocation",  # cudaErrorMemoryAllocation
    "cuda_error_out_of_memory",
    "cannot allocate memory",  # ENOMEM from the host allocator
)


def looks_like_oom(error: BaseException) -> bool:
    """Whether an exception from any codec backend means memory ran out.

    Device libraries report OOM in their own words (CuPy's OutOfMemoryError, nvCOMP
    status strings, torch's "CUDA out of memory"), so we look at the type name and
    message of the whole cause chain instead of importing those libraries here.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, MemoryError):
            return True
        if isinstance(current, CodecError) and current.kind is CodecErrorKind.OUT_OF_MEMORY:
            return True
        text = f"{type(current).__name__} {current}".lower()
        if any(marker in text for marker in _OOM_MARKERS):
            return True
        current = current.__cause__ or current.__context__
    return False
