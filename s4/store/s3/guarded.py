"""Commits sent under what a CommitGuard expects of the key, and sent again when the key changed.

See ``s4.store.base.CommitGuard`` for why: the upstream checks the condition atomically with the
commit, so the guard's last look is what the commit replaced, however many processes write the key.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from s4.store.base import CommitGuard, StoreError, WriteCondition, conflicting_write

T = TypeVar("T")

GUARDED_ATTEMPTS = 10
"""Commits sent before giving up with SlowDown (503, which clients retry): each refusal means another
writer's commit of the key landed meanwhile, so only a key written this hard by others runs out."""
_REFUSALS = ("PreconditionFailed", "NoSuchKey")
"""How an upstream refuses a conditional commit: 412, or 404 for If-Match on a key that is gone (AWS)."""


async def commit_guarded(
    condition: WriteCondition | None,
    guard: CommitGuard | None,
    send: Callable[[WriteCondition | None], Awaitable[T]],
    absent: Callable[[], T] | None = None,
) -> T:
    """``send`` the commit request under ``condition`` (the client's, as the inner object's identity) or,
    without one, under what ``guard`` expects; sent again while a refusal comes from the key having
    changed since the guard's look. ``absent``: the answer, without a request, when the guard finds no
    object (a delete: it would remove nothing).

    A refusal after which the guard finds the key as it expected it names something else (a copy's
    source that changed, a missing source): it is raised as it came."""
    if guard is None:
        return await send(condition)
    expected = await guard.expect()
    if condition is not None:
        # The client's condition was checked on a look of its own: the key changed since if they differ.
        if condition != expected:
            raise conflicting_write()
        return await send(condition)
    for attempt in range(1, GUARDED_ATTEMPTS + 1):
        if absent is not None and expected.if_none_match:
            return absent()
        try:
            return await send(expected)
        except StoreError as exc:
            if exc.code not in _REFUSALS:
                raise
            again = await guard.expect()
            if again == expected:
                raise
            expected = again
        await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))  # let the writers that won settle
    raise StoreError("SlowDown", "The key is being written by others too often to commit this change; retry it")
