"""Codec failures as store errors, so the server above maps only store errors to S3 errors.

Everything the compressing store does with codecs (encoding a PUT, decoding a GET, loading
a dictionary) may raise CodecError; each public method and each body it returns passes
through here, keeping the CodecError as the cause for the log.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from s4.codec import CodecError, CodecErrorKind
from s4.store.base import StoreError

P = ParamSpec("P")
T = TypeVar("T")


def as_store_error(error: CodecError) -> StoreError:
    if error.kind is CodecErrorKind.CORRUPT:
        return StoreError.corrupt()
    if error.kind is CodecErrorKind.OUT_OF_MEMORY:
        return StoreError.out_of_memory(str(error))
    return StoreError.unavailable(str(error))


def translating(method: Callable[P, Awaitable[T]]) -> Callable[P, Awaitable[T]]:
    """A store method whose CodecErrors leave as StoreErrors (the CodecError is the cause)."""

    @functools.wraps(method)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except CodecError as exc:
            raise as_store_error(exc) from exc

    return wrapper
