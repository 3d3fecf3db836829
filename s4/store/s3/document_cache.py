"""Bucket documents as last read from the upstream, kept a few seconds.

Every client request reads four of its bucket's documents (owner, policy, ACL, public access block) to
decide whether it may go on; over an upstream S3 each read is a GET of its own, so without this an
object GET cost five upstream requests, and about half the gateway's CPU per small request went to
the four that are the same for every request (measured: 6.1 against 3.3 ms per 1 KB GET over
SeaweedFS). What is kept answers as the upstream did, absence included.

Only ``get_bucket_documents``, the access check of a request that changes no bucket, is answered from
here. A single document (``get_bucket_document``) is read afresh: a handler about to change the bucket
or answer for its documents, CreateBucket looking for an owner, a failed DeleteBucket restoring what it
removed, and the access check of a request that changes the bucket (s4.server.access.authorize): a
stale owner there could leave a bucket recreated elsewhere without one, or grant its old owner a
lasting change of it.

How current it is: a document this process writes or removes takes effect in it at once (the entry goes
before the write is answered, and a read that was already on its way when it went keeps nothing). One
written by another process, a worker or another gateway over the same upstream, is seen within the
time an entry is kept. That is S3's own promise for bucket configurations (eventually consistent) and
the one the gateway already gives for CORS rules and versioning status. ``ttl`` 0 keeps nothing: every
request reads its documents again.

Only the bucket's own documents are kept. A name with a ``/`` belongs to one object or upload (an
object's ACL, ``object-acl/<hash>``; an upload's initiator, ``upload-owner/<id>``) and changes with
that object, whose reads S3 keeps strongly consistent: an object written private through one worker
must not be served by another under the ACL of the object it replaced. Those are read every time.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

MAX_ENTRIES = 10_000
"""Documents kept at most (four per bucket in use): the least recently read go first."""


class DocumentCache:
    """``(bucket, name) -> document or None`` for ``ttl`` seconds; see the module docstring."""

    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic, size: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self._clock = clock
        self._size = size
        self._kept: OrderedDict[tuple[str, str], tuple[float, bytes | None]] = OrderedDict()
        self._epoch = 0
        """Moves on at every forget: a read started before one keeps nothing (it may predate the write)."""

    def lookup(self, bucket: str, name: str) -> tuple[bool, bytes | None]:
        """(True, the document or None for none) while an entry is fresh; (False, None) otherwise."""
        if "/" in name:
            return False, None
        entry = self._kept.get((bucket, name))
        if entry is None:
            return False, None
        expires, document = entry
        if self._clock() >= expires:
            del self._kept[(bucket, name)]
            return False, None
        self._kept.move_to_end((bucket, name))
        return True, document

    def epoch(self) -> int:
        """Taken before a read of the upstream, handed back to ``keep`` with what it read."""
        return self._epoch

    def keep(self, bucket: str, name: str, document: bytes | None, epoch: int) -> None:
        """What the upstream answered, unless something was forgotten since the read began."""
        if self.ttl <= 0 or epoch != self._epoch or "/" in name:
            return
        self._kept[(bucket, name)] = (self._clock() + self.ttl, document)
        self._kept.move_to_end((bucket, name))
        while len(self._kept) > self._size:
            self._kept.popitem(last=False)

    def forget(self, bucket: str, name: str | None = None) -> None:
        """Before a write of ``name`` (every document of the bucket when None) is answered."""
        if name is not None and "/" in name:
            return  # never kept: reads on their way keep what they read
        self._epoch += 1
        if name is not None:
            self._kept.pop((bucket, name), None)
            return
        for kept in [k for k in self._kept if k[0] == bucket]:
            del self._kept[kept]
