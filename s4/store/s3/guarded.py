"""Commits sent under what a CommitGuard expects of the key, and sent again when the key changed.

See ``s4.store.base.CommitGuard`` for why: the upstream checks the condition atomically with the
commit, so the guard's last look is what the commit replaced, however many processes write the key.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from s4.store.base import CommitGuard, StoreError, WriteCondition, conflicting_write

T = TypeVar("T")
log = logging.getLogger(__name__)

GUARDED_ATTEMPTS = 10
"""Conditional commits sent before the last, unconditional one: each refusal means another writer's
commit of the key landed meanwhile, so only a key written this hard by others runs out."""
UNEXPLAINED_REFUSALS = 3
"""Refusals in a row after which the look still sees the key as expected, before the commit goes without
its condition. One is not enough: the key may have changed and changed back between the commit and the
look (another writer's PUT then DELETE of a key that was absent), and a commit sent without its
condition then replaces whatever landed meanwhile, uncounted."""
_REFUSALS = ("PreconditionFailed", "NoSuchKey", "ConditionalRequestConflict")
"""How an upstream refuses a conditional commit: 412; 404 for If-Match on a key that is gone; 409 when
another write of the key ran at the same time (AWS)."""
_NOT_TAKEN = ("NotImplemented", "InvalidRequest", "InvalidArgument", "AccessDenied")
"""How an upstream without conditional writes may answer one (or a refusal that names something else):
the commit is sent again without the condition, and is refused again if that was not the cause."""
_warned: set[str] = set()


async def commit_guarded(
    condition: WriteCondition | None,
    guard: CommitGuard | None,
    send: Callable[[WriteCondition | None], Awaitable[T]],
    absent: Callable[[], T] | None = None,
) -> T:
    """``send`` the commit request under ``condition`` (the client's, as the inner object's identity) or,
    without one, under what ``guard`` expects; sent again while a refusal comes from the key having
    changed since the guard's look. ``absent``: the answer, without a request, when the guard finds no
    object (a delete of the current object: it would remove nothing). A guard that expects None is
    sent no condition.

    After UNEXPLAINED_REFUSALS refusals in a row that the guard's look does not explain (the key is as it
    expected), and after GUARDED_ATTEMPTS refusals, the commit is sent once more without the guard's
    condition: a refusal that names something else (a copy's source that changed) then comes back and
    is raised."""
    if guard is None:
        return await send(condition)
    expected = await guard.expect()
    if condition is not None:
        # The client's condition was checked on a look of its own: the key changed since if they differ.
        if expected is not None and condition != expected:
            raise conflicting_write()
        return await send(condition)
    unexplained = 0
    for attempt in range(1, GUARDED_ATTEMPTS + 1):
        if expected is None:
            return await send(None)
        if absent is not None and expected.if_none_match:
            return absent()
        try:
            return await send(expected)
        except StoreError as exc:
            if exc.code in _NOT_TAKEN:
                return await _unguarded(send, f"the condition was answered {exc.code}")
            if exc.code not in _REFUSALS:
                raise
            if attempt == GUARDED_ATTEMPTS:
                break  # out of attempts: no pause or look would change what is sent next
            # Back off before the look, not between it and the commit: a look held through the pause
            # goes stale while the writers that won go on, and each pause longer than the last made
            # the next refusal likelier (a writer contending long enough ran out of attempts).
            await asyncio.sleep(random.uniform(0, 0.005 * 2**attempt))
            again = await guard.expect()
            unexplained = unexplained + 1 if again == expected else 0
            if unexplained == UNEXPLAINED_REFUSALS:
                # The key is as the guard saw it each time, yet the commit was refused: the refusal names
                # something else (a copy's source), and then comes again without the guard's condition,
                # or the upstream checks conditions against something other than what it reads back.
                return await _unguarded(send, f"refused ({exc.code}) though the key had not changed")
            expected = again
    return await _unguarded(send, f"refused {GUARDED_ATTEMPTS} times, the key changing meanwhile")


async def _unguarded(send: Callable[[WriteCondition | None], Awaitable[T]], why: str) -> T:
    """The commit without the guard's condition: the client's change is never refused for the ledger's
    sake; only what the ledger counts for it may then be off (``s4 savings --recount``). Logged once per
    process and reason: an upstream that never honours a condition would otherwise log every write."""
    result = await send(None)
    if why not in _warned:
        _warned.add(why)
        log.warning("a commit was sent without its guard (%s): the savings ledger may be off for it", why)
    return result
