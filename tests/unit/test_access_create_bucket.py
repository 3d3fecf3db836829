"""CreateBucket never hands a bucket to another identity, whatever the upstream answers (issue 15, review A4),
and a DeleteBucket that fails keeps the bucket's owner and access documents (review A6).

AWS S3 in us-east-1 answers 200 to a CreateBucket of a bucket its caller already has: over S3 every client
bucket is the gateway's one upstream identity's, so the upstream's answer cannot tell who owns it. Here the
store answers as us-east-1 does; the owner record alone decides.
"""

from __future__ import annotations

import asyncio
import types
from pathlib import Path

import pytest

from s4.server.access.identities import IDENTITIES
from s4.server.access.owners import bucket_owner
from s4.server.errors import S3Error
from s4.server.ops.buckets import create_bucket, delete_bucket
from s4.store import StoreError
from s4.store.filesystem import FilesystemStore


class UsEast1Store(FilesystemStore):
    """An upstream that answers 200 to making a bucket that exists (us-east-1's legacy answer)."""

    async def create_bucket(self, bucket: str) -> None:
        try:
            await super().create_bucket(bucket)
        except StoreError as exc:
            if exc.code != "BucketAlreadyOwnedByYou":
                raise


def _request(store: FilesystemStore, who: str, region: str = "us-east-1") -> types.SimpleNamespace:
    async def read_small_body(limit: int = 0) -> bytes:
        return b""

    app = {IDENTITIES: types.SimpleNamespace(legacy_owner="admin")}
    return types.SimpleNamespace(
        bucket="taken",
        headers={},
        owner_id=who,
        store=store,
        config=types.SimpleNamespace(region=region),
        http=types.SimpleNamespace(app=app),
        read_small_body=read_small_body,
    )


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_another_identity_cannot_take_over_a_bucket(tmp_path: Path, region: str) -> None:
    asyncio.run(_take_over(tmp_path, region))


async def _take_over(tmp_path: Path, region: str) -> None:
    store = await UsEast1Store.open(tmp_path, durable=False)
    try:
        assert (await create_bucket(_request(store, "alice", region))).status == 200
        with pytest.raises(S3Error) as refused:
            await create_bucket(_request(store, "bob", region))
        assert (refused.value.code, refused.value.status) == ("BucketAlreadyExists", 409)
        assert await bucket_owner(store, "taken") == "alice"
        if region == "us-east-1":  # the owner making it again: 200, as S3 in us-east-1
            assert (await create_bucket(_request(store, "alice", region))).status == 200
        else:
            with pytest.raises(S3Error) as again:
                await create_bucket(_request(store, "alice", region))
            assert again.value.code == "BucketAlreadyOwnedByYou"
        assert await bucket_owner(store, "taken") == "alice"
    finally:
        await store.close()


def test_a_bucket_without_record_stays_its_legacy_owners(tmp_path: Path) -> None:
    asyncio.run(_legacy(tmp_path))


async def _legacy(tmp_path: Path) -> None:
    store = await UsEast1Store.open(tmp_path, durable=False)
    try:
        await store.create_bucket("taken")  # made before the gateway had identities: no owner record
        with pytest.raises(S3Error) as refused:
            await create_bucket(_request(store, "bob"))
        assert refused.value.code == "BucketAlreadyExists"
        assert await bucket_owner(store, "taken", "admin") == "admin"
    finally:
        await store.close()


class RefusingDeleteStore(FilesystemStore):
    """As the S3 store when the upstream refuses DeleteBucket after the emptiness check (a PUT landed in
    between, a permission error): the bucket's documents are cleared, the bucket stays."""

    async def delete_bucket(self, bucket: str) -> None:
        for name in ("owner", "policy", "acl", "public-access-block"):
            await self.delete_bucket_document(bucket, name)
        raise StoreError("BucketNotEmpty", "The bucket you tried to delete is not empty", resource=bucket)


def test_a_failed_delete_keeps_the_owner_and_access_documents(tmp_path: Path) -> None:
    asyncio.run(_failed_delete(tmp_path))


async def _failed_delete(tmp_path: Path) -> None:
    store = await RefusingDeleteStore.open(tmp_path, durable=False)
    try:
        await create_bucket(_request(store, "alice"))
        await store.put_bucket_document("taken", "policy", b'{"Statement": []}')
        with pytest.raises(StoreError):
            await delete_bucket(_request(store, "alice"))
        assert await bucket_owner(store, "taken", "admin") == "alice"  # not the legacy owner's now
        assert await store.get_bucket_document("taken", "policy") == b'{"Statement": []}'
    finally:
        await store.close()


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_a_bucket_deleted_through_another_worker_and_made_again_is_its_makers(tmp_path: Path, region: str) -> None:
    """Two workers over one upstream S3, each keeping the documents it read for the access checks. Alice's
    bucket is deleted through worker 2, then made again by alice through worker 1, which had just read its
    owner: CreateBucket must find no owner (it reads afresh) and record alice again, not take the bucket
    for one that exists and leave it without an owner (the legacy owner's)."""
    from s4.config import UpstreamConfig
    from s4.store.s3.store import S3Store
    from tests.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedUnavailable, start_seaweed

    try:
        seaweed = start_seaweed(tmp_path / "seaweed")
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")

    async def scenario() -> None:
        config = UpstreamConfig(
            endpoint=seaweed.endpoint, access_key_id=ACCESS_KEY, secret_access_key=SECRET_KEY, document_cache_seconds=60
        )
        one, two = await S3Store.open(config), await S3Store.open(config)
        try:
            assert (await create_bucket(_request(one, "alice", region))).status == 200
            names = ("owner", "policy", "acl", "public-access-block")
            assert (await one.get_bucket_documents("taken", names))["owner"] == b"alice"  # a request's check
            await two.delete_bucket("taken")
            assert (await create_bucket(_request(one, "alice", region))).status == 200
            assert await one.get_bucket_document("taken", "owner") == b"alice"
            assert await bucket_owner(two, "taken", "admin") == "alice"
        finally:
            await one.close()
            await two.close()

    try:
        asyncio.run(scenario())
    finally:
        seaweed.stop()
