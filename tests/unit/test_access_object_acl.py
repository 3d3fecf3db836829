"""An upload's ACL goes to the object that upload wrote, never to another writer's (issue 15, review A5).

The ACL is kept after the write; when another write of the key landed in between, the object now current is
not this upload's and must keep its own owner's default ACL (before: the ACL was bound to whatever object was
current when it was kept, so a private object could become public-read by a concurrent public-read PUT).
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

from s4.server.ops.documents.acl import canned_acl
from s4.server.ops.documents.object_acl import keep_acl, kept_acl
from s4.store import ObjectAttributes
from s4.store.filesystem import FilesystemStore
from tests.unit.store_helpers import body


def test_an_uploads_acl_never_goes_to_the_object_that_replaced_it(tmp_path: Path) -> None:
    asyncio.run(_replaced(tmp_path))


async def _replaced(tmp_path: Path) -> None:
    store = await FilesystemStore.open(tmp_path, durable=False)
    try:
        await store.create_bucket("b")
        bobs = await store.put_object("b", "k", body(b"bob's public data"), ObjectAttributes())
        await store.put_object("b", "k", body(b"alice's private data"), ObjectAttributes())  # lands in between
        req = types.SimpleNamespace(bucket="b", store=store)
        await keep_acl(req, "k", canned_acl("public-read", "bob"), bobs)  # bob's write keeps its ACL last
        assert await kept_acl(store, "b", "k") is None  # alice's object: its owner's default ACL
        alices = await store.head_object("b", "k")
        await keep_acl(req, "k", canned_acl("public-read", "alice"), alices)
        assert await kept_acl(store, "b", "k") is not None
    finally:
        await store.close()
