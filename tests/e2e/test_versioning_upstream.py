"""S3 versioning over a real SeaweedFS: the S3 store's versioning calls straight against the upstream,
and where SeaweedFS answers otherwise than S3 (s4/store/s3/versions.py), the store answering as S3 does.

One SeaweedFS for the module; each test its own bucket.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import urllib.request
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.codec.policy import FramePolicy
from s4.config import UpstreamConfig
from s4.store.base import ByteRange, DeleteResult, ObjectAttributes, ObjectStream, StoreError, WriteCondition
from s4.store.compressing.store import CompressingStore
from s4.store.s3.store import TEMP_PREFIX, S3Store
from s4.store.s3.versions import ORDER_FIELD
from tests.seaweed import ACCESS_KEY, SECRET_KEY, SeaweedFS, SeaweedUnavailable, start_seaweed
from tests.unit.store_helpers import body

T = TypeVar("T")
MiB = 1024 * 1024
PART = 5 * MiB
FRAME = 64 * 1024
POLICY = FramePolicy(
    single_frame_max=FRAME, medium_frame=FRAME, medium_max=64 * MiB, large_frame=FRAME, unknown_frame=FRAME
)
_names = itertools.count()


@pytest.fixture(scope="module")
def seaweed(tmp_path_factory) -> SeaweedFS:
    try:
        upstream = start_seaweed(tmp_path_factory.mktemp("seaweed"))
    except SeaweedUnavailable as exc:
        pytest.skip(f"SeaweedFS cannot run here: {exc}")
    yield upstream
    upstream.stop()


@pytest.fixture(scope="module")
def loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def store(seaweed, loop) -> S3Store:
    config = UpstreamConfig(
        endpoint=seaweed.endpoint,
        access_key_id=ACCESS_KEY,
        secret_access_key=SECRET_KEY,
        multipart_threshold=PART,
        part_size=PART,
        connect_timeout=2,
        read_timeout=10,
    )
    opened = loop.run_until_complete(S3Store.open(config))
    yield opened
    loop.run_until_complete(opened.close())


@pytest.fixture(scope="module")
def compressing(store) -> CompressingStore:
    pool = CpuCodecPool(CodecRegistry.cpu_default())
    yield CompressingStore(store, pool, CodecDispatcher(), POLICY)
    pool.close()


@pytest.fixture
def run(loop) -> Callable[[Awaitable[T]], T]:
    def runner(awaitable: Awaitable[T], timeout: float = 60) -> T:
        return loop.run_until_complete(asyncio.wait_for(awaitable, timeout))

    return runner


@pytest.fixture
def bucket(store, run) -> str:
    name = f"versions-{next(_names)}"
    run(store.create_bucket(name))
    return name


@pytest.fixture
def versioned(store, run, bucket) -> str:
    run(store.put_bucket_versioning(bucket, "Enabled"))
    return bucket


async def read(stream: ObjectStream) -> bytes:
    try:
        return b"".join([chunk async for chunk in stream.body])
    finally:
        await stream.aclose()


def put(run, store: S3Store, bucket: str, key: str, data: bytes, **kw: Any):
    return run(store.put_object(bucket, key, body(data), ObjectAttributes(), **kw))


def get(run, store: S3Store, bucket: str, key: str, version_id: str | None = None, byte_range=None) -> bytes:
    return run(read(run(store.get_object(bucket, key, byte_range, version_id=version_id))))


def failure(run, awaitable: Awaitable[Any]) -> StoreError:
    with pytest.raises(StoreError) as caught:
        run(awaitable)
    return caught.value


def listed(run, store: S3Store, bucket: str, **kw: Any) -> list[tuple[str, str, bool, bool]]:
    page = run(store.list_object_versions(bucket, **kw))
    return [(v.key, v.version_id, v.is_latest, v.delete_marker) for v in page.versions]


def raw_versions(seaweed: SeaweedFS, bucket: str, prefix: str = "") -> list[str]:
    answer = seaweed.client().list_object_versions(Bucket=bucket, Prefix=prefix)
    return [e["Key"] for e in [*answer.get("Versions", []), *answer.get("DeleteMarkers", [])]]


# -- a never-versioned bucket looks like S3's ---------------------------------------------------------


def test_a_never_versioned_bucket_has_no_version_ids_and_null_versions(store, run, bucket):
    assert run(store.get_bucket_versioning(bucket)) is None
    assert put(run, store, bucket, "k", b"one").version_id is None
    assert run(store.head_object(bucket, "k")).version_id is None
    assert get(run, store, bucket, "k", "null") == b"one"
    assert listed(run, store, bucket) == [("k", "null", True, False)]
    assert run(store.delete_object(bucket, "k")) == DeleteResult()


def test_an_unknown_version_id_on_a_never_versioned_bucket_touches_nothing(store, seaweed, run, bucket):
    # SeaweedFS answers any id with the current object there, and deletes the current object for any id.
    put(run, store, bucket, "k", b"one", tags={"a": "1"})
    other = "6712a12e91552ad8962de0ef70622224"
    # S3 knows no id but null on a bucket never versioned: InvalidArgument, as it answers.
    assert failure(run, store.head_object(bucket, "k", version_id=other)).code == "InvalidArgument"
    assert failure(run, store.get_object(bucket, "k", version_id=other)).code == "InvalidArgument"
    assert failure(run, store.get_object_tagging(bucket, "k", version_id=other)).code == "InvalidArgument"
    assert failure(run, store.put_object_tagging(bucket, "k", {"b": "2"}, version_id=other)).code == "InvalidArgument"
    assert failure(run, store.delete_object(bucket, "k", version_id=other)).code == "InvalidArgument"
    assert get(run, store, bucket, "k") == b"one"
    assert run(store.get_object_tagging(bucket, "k")) == {"a": "1"}
    copy = failure(run, store.copy_object(bucket, "k", bucket, "c", None, src_version_id=other))
    assert copy.code == "InvalidArgument"
    assert run(store.delete_object(bucket, "k", version_id="null")).version_id == "null"
    assert failure(run, store.head_object(bucket, "k")).code == "NoSuchKey"


# -- Enabled: versions, delete markers ----------------------------------------------------------------


def test_versions_are_kept_and_read_by_id(store, run, versioned):
    bucket = versioned
    assert run(store.get_bucket_versioning(bucket)) == "Enabled"
    v1 = put(run, store, bucket, "k", b"first version").version_id
    v2 = put(run, store, bucket, "k", b"second, longer version").version_id
    assert v1 and v2 and v1 != v2
    assert run(store.head_object(bucket, "k")).version_id == v2
    head = run(store.head_object(bucket, "k", version_id=v1))
    assert (head.version_id, head.size) == (v1, len(b"first version"))
    assert get(run, store, bucket, "k", v1) == b"first version"
    assert get(run, store, bucket, "k", v1, ByteRange(6, 12)) == b"version"
    assert get(run, store, bucket, "k") == b"second, longer version"
    assert listed(run, store, bucket) == [("k", v2, True, False), ("k", v1, False, False)]
    assert failure(run, store.get_object(bucket, "k", version_id="null")).code == "NoSuchVersion"
    missing = "6712a12e91552ad8962de0ef70622224"
    assert failure(run, store.head_object(bucket, "k", version_id=missing)).code == "NoSuchVersion"
    assert failure(run, store.head_object(bucket, "nokey", version_id=missing)).code == "NoSuchVersion"
    assert failure(run, store.head_object("no-such-bucket-v", "k", version_id=v1)).code == "NoSuchBucket"


def test_delete_markers_answer_as_s3s(store, run, versioned):
    bucket = versioned
    v1 = put(run, store, bucket, "k", b"one").version_id
    marker = run(store.delete_object(bucket, "k"))
    assert marker.delete_marker and marker.version_id not in (None, v1)
    for call in (store.head_object(bucket, "k"), store.get_object(bucket, "k")):
        error = failure(run, call)
        assert (error.code, error.delete_marker, error.version_id) == ("NoSuchKey", True, marker.version_id)
    for call in (
        store.head_object(bucket, "k", version_id=marker.version_id),
        store.get_object(bucket, "k", version_id=marker.version_id),
    ):
        error = failure(run, call)
        assert (error.code, error.delete_marker, error.version_id) == ("MethodNotAllowed", True, marker.version_id)
    assert listed(run, store, bucket) == [("k", marker.version_id, True, True), ("k", v1, False, False)]
    assert get(run, store, bucket, "k", v1) == b"one"
    # If-None-Match: * sees no object under a delete marker.
    v2 = put(run, store, bucket, "k", b"two", condition=WriteCondition(if_none_match=True)).version_id
    assert failure(
        run, store.put_object(bucket, "k", body(b"3"), ObjectAttributes(), WriteCondition(if_none_match=True))
    )
    assert run(store.delete_object(bucket, "k", version_id=v2)) == DeleteResult(v2, False)
    assert run(store.delete_object(bucket, "k", version_id=marker.version_id)) == DeleteResult(marker.version_id, True)
    assert run(store.head_object(bucket, "k")).version_id == v1
    # A version id that names nothing: nothing happens, as S3 answers 204.
    gone = run(store.delete_object(bucket, "k", version_id=v2))
    assert gone.version_id == v2 and get(run, store, bucket, "k") == b"one"
    error = failure(run, store.head_object(bucket, "never-there"))
    assert (error.code, error.delete_marker) == ("NoSuchKey", False)


def test_copies_and_conditions_meet_a_delete_marker(store, run, versioned):
    bucket = versioned
    v1 = put(run, store, bucket, "k", b"one").version_id
    marker = run(store.delete_object(bucket, "k")).version_id
    by_id = failure(run, store.copy_object(bucket, "k", bucket, "c", None, src_version_id=marker))
    assert (by_id.code, by_id.delete_marker) == ("InvalidRequest", False)
    current = failure(run, store.copy_object(bucket, "k", bucket, "c", None))
    assert (current.code, current.delete_marker, current.version_id) == ("NoSuchKey", False, None)
    if_match = failure(run, store.put_object(bucket, "k", body(b"2"), ObjectAttributes(), WriteCondition(if_match="*")))
    assert if_match.code in ("NoSuchKey", "PreconditionFailed")
    # A malformed id on a versioned bucket removes nothing either.
    run(store.delete_object(bucket, "k", version_id="garbage"))
    assert listed(run, store, bucket) == [("k", marker, True, True), ("k", v1, False, False)]


def test_listing_interleaves_markers_in_s3s_order_and_pages(store, run, versioned):
    bucket = versioned
    ids: dict[str, list[tuple[str, bool]]] = {"a": [], "b": [], "d/x": [], "d/y": []}
    for key, data in [("a", b"1"), ("b", b"1"), ("a", b"2"), ("d/x", b"1"), ("d/y", b"1")]:
        ids[key].insert(0, (put(run, store, bucket, key, data).version_id, False))
    ids["a"].insert(0, (run(store.delete_object(bucket, "a")).version_id, True))
    ids["a"].insert(0, (put(run, store, bucket, "a", b"3").version_id, False))
    ids["b"].insert(0, (run(store.delete_object(bucket, "b")).version_id, True))
    expected = [
        (key, vid, n == 0, marker) for key in ("a", "b", "d/x", "d/y") for n, (vid, marker) in enumerate(ids[key])
    ]
    assert listed(run, store, bucket) == expected
    # The interleaving comes from the XML itself (botocore's hook still fires).
    raw_answer = run(store._call("list_object_versions", Bucket=bucket))
    assert raw_answer[ORDER_FIELD] == [marker for key in ids for _, marker in ids[key]]
    # Rolled up at a delimiter.
    page = run(store.list_object_versions(bucket, delimiter="/"))
    assert [v.key for v in page.versions] == ["a"] * 4 + ["b"] * 2 and page.common_prefixes == ["d/"]
    # Page by page, two at a time, back to the same list.
    seen: list[tuple[str, str, bool, bool]] = []
    key_marker = version_marker = None
    for _ in range(10):
        page = run(
            store.list_object_versions(bucket, key_marker=key_marker, version_id_marker=version_marker, max_keys=2)
        )
        seen += [(v.key, v.version_id, v.is_latest, v.delete_marker) for v in page.versions]
        if not page.is_truncated:
            break
        key_marker, version_marker = page.next_key_marker, page.next_version_id_marker
    assert seen == expected
    assert listed(run, store, bucket, prefix="d/") == [e for e in expected if e[0].startswith("d/")]


def test_small_pages_lose_nothing_where_keys_share_a_prefix(store, run, versioned):
    # SeaweedFS keeps the versions of "log" in a folder "log.versions": its own small pages skip "log".
    bucket = versioned
    for key in ["log", "log.s4v.a.s4index", "log", "log.a", "log/x", "lo", "log0", "log.z", "m"]:
        put(run, store, bucket, key, b"1")
    run(store.delete_object(bucket, "log"))
    run(store.delete_object(bucket, "m"))
    whole = listed(run, store, bucket)
    assert len(whole) == 11 and [e[0] for e in whole] == sorted(e[0] for e in whole)
    assert [e[0] for e in whole[1:4]] == ["log"] * 3 and whole[1][2:] == (True, True)
    for size in (1, 2, 5):
        seen: list[tuple[str, str, bool, bool]] = []
        key_marker = version_marker = None
        for _ in range(20):
            page = run(
                store.list_object_versions(
                    bucket, key_marker=key_marker, version_id_marker=version_marker, max_keys=size
                )
            )
            assert len(page.versions) <= size
            seen += [(v.key, v.version_id, v.is_latest, v.delete_marker) for v in page.versions]
            if not page.is_truncated:
                break
            key_marker, version_marker = page.next_key_marker, page.next_version_id_marker
        assert seen == whole, size
    error = failure(run, store.get_object(bucket, "log"))
    assert (error.delete_marker, error.version_id) == (True, whole[1][1])


# -- Suspended: the null version -----------------------------------------------------------------------


def test_suspended_writes_the_null_version(store, run, versioned):
    bucket = versioned
    v1 = put(run, store, bucket, "k", b"one").version_id
    run(store.put_bucket_versioning(bucket, "Suspended"))
    assert run(store.get_bucket_versioning(bucket)) == "Suspended"
    # A write names no version there, as S3's answers do (s3-tests); the version is the null one.
    assert put(run, store, bucket, "k", b"null one").version_id is None
    assert put(run, store, bucket, "k", b"null two").version_id is None
    assert run(store.head_object(bucket, "k")).version_id == "null"
    assert listed(run, store, bucket) == [("k", "null", True, False), ("k", v1, False, False)]
    copied = run(store.copy_object(bucket, "k", bucket, "c", None, src_version_id=v1))
    assert copied.version_id is None and get(run, store, bucket, "c") == b"one"
    assert run(store.delete_object(bucket, "k")) == DeleteResult("null", True)
    assert listed(run, store, bucket, prefix="k") == [("k", "null", True, True), ("k", v1, False, False)]


def test_a_null_delete_marker_cannot_be_deleted_but_is_not_lied_about(store, run, versioned):
    """SeaweedFS keeps a null delete marker that is deleted by its id (and 204s). Replacing it by an empty
    null version and deleting that could delete a client's PUT landing in between, so for a client's key the
    store says it cannot (NotImplemented), under Suspended as under Enabled, rather than 204 (versions.py);
    a new PUT still replaces the marker."""
    bucket = versioned
    v1 = put(run, store, bucket, "old", b"one").version_id
    run(store.put_bucket_versioning(bucket, "Suspended"))
    put(run, store, bucket, "old", b"null version")
    assert run(store.delete_object(bucket, "old")) == DeleteResult("null", True)
    assert failure(run, store.delete_object(bucket, "old", version_id="null")).code == "NotImplemented"
    assert listed(run, store, bucket) == [("old", "null", True, True), ("old", v1, False, False)]
    put(run, store, bucket, "old", b"null again")
    assert get(run, store, bucket, "old") == b"null again"
    run(store.delete_object(bucket, "old"))
    run(store.put_bucket_versioning(bucket, "Enabled"))
    assert failure(run, store.delete_object(bucket, "old", version_id="null")).code == "NotImplemented"


# -- copies, multipart, tags of versions --------------------------------------------------------------


def test_copies_and_parts_from_an_old_version(store, run, versioned):
    bucket = versioned
    old = bytes(range(256)) * 4 * 1024 * 6  # 6 MiB
    v1 = put(run, store, bucket, "src", old).version_id
    put(run, store, bucket, "src", b"new")
    copied = run(store.copy_object(bucket, "src", bucket, "dst", None, src_version_id=v1))
    assert copied.version_id and get(run, store, bucket, "dst") == old
    upload = run(store.create_multipart_upload(bucket, "mp", ObjectAttributes()))
    first = run(
        store.upload_part_copy(bucket, "mp", upload, 1, bucket, "src", ByteRange(0, PART - 1), src_version_id=v1)
    )
    second = run(store.upload_part_copy(bucket, "mp", upload, 2, bucket, "src", ByteRange(PART), src_version_id=v1))
    done = run(store.complete_multipart_upload(bucket, "mp", upload, [(1, first.etag), (2, second.etag)]))
    assert done.version_id and run(store.head_object(bucket, "mp")).version_id == done.version_id
    assert get(run, store, bucket, "mp") == old


def test_tags_of_a_version(store, run, versioned):
    bucket = versioned
    v1 = put(run, store, bucket, "k", b"one", tags={"v": "1"}).version_id
    put(run, store, bucket, "k", b"two", tags={"v": "2"})
    assert run(store.get_object_tagging(bucket, "k", version_id=v1)) == {"v": "1"}
    run(store.put_object_tagging(bucket, "k", {"v": "one"}, version_id=v1))
    assert run(store.get_object_tagging(bucket, "k", version_id=v1)) == {"v": "one"}
    assert run(store.get_object_tagging(bucket, "k")) == {"v": "2"}


# -- the gateway's own keys leave no versions behind; a bucket with versions is not empty ---------------


def test_a_large_put_leaves_no_temporary_versions(store, seaweed, run, versioned):
    bucket = versioned
    data = b"x" * (PART + 1)
    info = put(run, store, bucket, "big", data)
    assert info.version_id and get(run, store, bucket, "big") == data
    assert not [k for k in raw_versions(seaweed, bucket) if k.startswith(TEMP_PREFIX)]
    run(store.delete_object(bucket, ".s4mpu/staged"))  # the compressing store's staging: gone for good too
    put(run, store, bucket, ".s4mpu/staged", b"part")
    run(store.delete_object(bucket, ".s4mpu/staged"))
    assert raw_versions(seaweed, bucket, ".s4mpu/") == []


def test_bucket_documents_are_read_together_as_one_by_one(store, run, bucket):
    run(store.put_bucket_document(bucket, "policy", b"{}"))
    run(store.put_bucket_document(bucket, "tagging", b"<Tagging/>"))
    assert run(store.get_bucket_documents(bucket, ("tagging", "acl", "policy"))) == {
        "tagging": b"<Tagging/>",
        "acl": None,
        "policy": b"{}",
    }
    for names in (("policy",), ()):
        assert failure(run, store.get_bucket_documents("no-such-bucket-here", names)).code == "NoSuchBucket"


def test_a_bucket_with_versions_left_is_not_empty(store, seaweed, run, versioned):
    bucket = versioned
    run(store.put_bucket_document(bucket, "tagging", b"<Tagging/>"))
    v1 = put(run, store, bucket, "k", b"one").version_id
    marker = run(store.delete_object(bucket, "k")).version_id
    assert failure(run, store.delete_bucket(bucket)).code == "BucketNotEmpty"
    run(store.delete_object(bucket, "k", version_id=v1))
    assert failure(run, store.delete_bucket(bucket)).code == "BucketNotEmpty"
    run(store.delete_object(bucket, "k", version_id=marker))
    run(store.delete_bucket(bucket))
    assert bucket not in [b["Name"] for b in seaweed.client().list_buckets()["Buckets"]]


def test_a_shared_upstream_bucket_has_one_versioning_for_all(store, seaweed, run):
    """With every client bucket a prefix of one upstream bucket, versioning is that bucket's: shown, not set."""
    raw = seaweed.client()
    raw.create_bucket(Bucket="s4-shared-versions")
    raw.put_bucket_versioning(Bucket="s4-shared-versions", VersioningConfiguration={"Status": "Enabled"})
    config = store.config.model_copy(update={"bucket": "s4-shared-versions", "key_prefix": "t/{bucket}/"})
    shared = run(S3Store.open(config))
    try:
        run(shared.create_bucket("one"))
        run(shared.create_bucket("two"))
        assert run(shared.get_bucket_versioning("one")) == "Enabled"
        assert failure(run, shared.put_bucket_versioning("one", "Suspended")).code == "NotImplemented"
        v1 = put(run, shared, "one", "k", b"1").version_id
        v2 = put(run, shared, "one", "k", b"2").version_id
        put(run, shared, "two", "k", b"other")
        assert listed(run, shared, "one") == [("k", v2, True, False), ("k", v1, False, False)]
        assert get(run, shared, "one", "k", v1) == b"1"
        marker = run(shared.delete_object("one", "k")).version_id
        error = failure(run, shared.head_object("one", "k"))
        assert (error.code, error.delete_marker, error.version_id) == ("NoSuchKey", True, marker)
        assert failure(run, shared.head_object("three", "k", version_id=v1)).code == "NoSuchBucket"
    finally:
        run(shared.close())


# -- the CompressingStore over it: every version compressed, with its own sidecar ------------------------


def text(seed: int, size: int) -> bytes:
    line = b"%08d 2026-12-02T07:00:00Z INFO versioned upstream request served status=200\n"
    return b"".join(line % (seed * 1_000_000 + n) for n in range(size // len(line) + 1))[:size]


def test_the_compressing_store_keeps_versions_upstream(compressing, seaweed, run, versioned):
    bucket = versioned
    old, new = text(1, 10 * FRAME), text(2, 12 * FRAME)
    v1 = run(compressing.put_object(bucket, "log", body(old), ObjectAttributes())).version_id
    v2 = run(compressing.put_object(bucket, "log", body(new), ObjectAttributes())).version_id
    assert v1 and v2 and v1 != v2
    raw = seaweed.client()
    stored = raw.get_object(Bucket=bucket, Key="log", VersionId=v1)["Body"].read()
    assert stored[:4] == b"S4F2" and len(stored) < len(old) / 3
    assert get(run, compressing, bucket, "log", v1) == old
    assert (
        get(run, compressing, bucket, "log", v1, ByteRange(3 * FRAME + 5, 5 * FRAME))
        == old[3 * FRAME + 5 : 5 * FRAME + 1]
    )
    assert get(run, compressing, bucket, "log", None, ByteRange(suffix=100)) == new[-100:]
    page = run(compressing.list_object_versions(bucket))
    assert [(v.key, v.version_id, v.size, v.is_latest) for v in page.versions] == [
        ("log", v2, len(new), True),
        ("log", v1, len(old), False),
    ]
    marker = run(compressing.delete_object(bucket, "log"))
    error = failure(run, compressing.head_object(bucket, "log"))
    assert (error.code, error.delete_marker, error.version_id) == ("NoSuchKey", True, marker.version_id)
    copied = run(compressing.copy_object(bucket, "log", bucket, "restored", None, src_version_id=v1))
    assert get(run, compressing, bucket, "restored") == old and copied.version_id
    run(compressing.delete_object(bucket, "log", version_id=v1))
    assert failure(run, compressing.get_object(bucket, "log", version_id=v1)).code == "NoSuchVersion"
    assert get(run, compressing, bucket, "log", v2, ByteRange(0, 99)) == new[:100]
    # Upstream: client versions, the surviving versions' sidecars, nothing of the deleted one's.
    left = raw_versions(seaweed, bucket)
    assert not [k for k in left if v1 in k] and not [k for k in left if k.startswith(".s4mpu/")]


# -- aws-cli s3api through a real `s4 serve --backend s3` over SeaweedFS ---------------------------------


@pytest.fixture(scope="module")
def gateway(seaweed, tmp_path_factory):
    from tests.e2e.gateway import start_gateway

    gw = start_gateway(tmp_path_factory.mktemp("gw-upstream-versions"), extra_env=seaweed.env())
    yield gw
    gw.stop()


def s3api(gateway, *args: object) -> dict[str, Any]:
    out = gateway.aws("s3api", *args).stdout
    return json.loads(out) if out.strip() else {}


def test_aws_cli_versions_through_the_gateway(gateway, seaweed, tmp_path):
    """aws-cli for each versioning call a user makes; boto3 (in process, faster) for the checks in between."""
    bucket = "cli-versions"
    c = gateway.client()
    c.create_bucket(Bucket=bucket)
    assert "Status" not in c.get_bucket_versioning(Bucket=bucket)
    assert "VersionId" not in c.put_object(Bucket=bucket, Key="plain", Body=b"before versioning")
    s3api(gateway, "put-bucket-versioning", "--bucket", bucket, "--versioning-configuration", "Status=Enabled")
    assert c.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    old, new = text(3, 40 * FRAME), text(4, 48 * FRAME)
    (tmp_path / "old").write_bytes(old)
    (tmp_path / "new").write_bytes(new)
    v1 = s3api(gateway, "put-object", "--bucket", bucket, "--key", "k", "--body", tmp_path / "old")["VersionId"]
    v2 = s3api(gateway, "put-object", "--bucket", bucket, "--key", "k", "--body", tmp_path / "new")["VersionId"]
    assert v1 != v2
    # Upstream: each version stored compressed, under the upstream's own version id.
    raw = seaweed.client()
    for vid, data in ((v1, old), (v2, new)):
        stored = raw.get_object(Bucket=bucket, Key="k", VersionId=vid)["Body"].read()
        assert stored[:4] == b"S4F2" and len(stored) < len(data) / 3
    listing = s3api(gateway, "list-object-versions", "--bucket", bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in listing["Versions"]] == [
        ("k", v2, True, len(new)),
        ("k", v1, False, len(old)),
        ("plain", "null", True, len(b"before versioning")),
    ]
    got = s3api(gateway, "get-object", "--bucket", bucket, "--key", "k", "--version-id", v1, tmp_path / "got")
    assert got["VersionId"] == v1 and (tmp_path / "got").read_bytes() == old
    span = f"bytes={7 * FRAME + 3}-{9 * FRAME}"
    s3api(gateway, "get-object", "--bucket", bucket, "--key", "k", "--version-id", v1, "--range", span, tmp_path / "r")
    assert (tmp_path / "r").read_bytes() == old[7 * FRAME + 3 : 9 * FRAME + 1]
    # A delete marker: the key is gone (404 with the marker's headers), its versions are not.
    marker = s3api(gateway, "delete-object", "--bucket", bucket, "--key", "k")
    assert marker["DeleteMarker"] is True and marker["VersionId"] not in (v1, v2)
    with pytest.raises(ClientError) as caught:
        c.get_object(Bucket=bucket, Key="k")
    headers = caught.value.response["ResponseMetadata"]["HTTPHeaders"]
    assert caught.value.response["Error"]["Code"] == "NoSuchKey" and headers.get("x-amz-delete-marker") == "true"
    assert headers.get("x-amz-version-id") == marker["VersionId"]
    with pytest.raises(ClientError) as caught:
        c.head_object(Bucket=bucket, Key="k", VersionId=marker["VersionId"])
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 405
    markers = c.list_object_versions(Bucket=bucket, Prefix="k")["DeleteMarkers"]
    assert [(m["VersionId"], m["IsLatest"]) for m in markers] == [(marker["VersionId"], True)]
    # Copy from an old version; then the marker and the newest version deleted for good: v1 is current again.
    source = f"{bucket}/k?versionId={v1}"
    assert s3api(gateway, "copy-object", "--bucket", bucket, "--key", "restored", "--copy-source", source)["VersionId"]
    assert c.get_object(Bucket=bucket, Key="restored")["Body"].read() == old
    deleted = s3api(gateway, "delete-object", "--bucket", bucket, "--key", "k", "--version-id", marker["VersionId"])
    assert deleted["VersionId"] == marker["VersionId"]
    c.delete_object(Bucket=bucket, Key="k", VersionId=v2)
    now = c.get_object(Bucket=bucket, Key="k")
    assert now["VersionId"] == v1 and now["Body"].read() == old
    # Suspended: the null version.
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Suspended"})
    assert "VersionId" not in c.put_object(Bucket=bucket, Key="k", Body=new)
    assert c.head_object(Bucket=bucket, Key="k")["VersionId"] == "null"
    versions = c.list_object_versions(Bucket=bucket, Prefix="k")["Versions"]
    assert [(v["VersionId"], v["IsLatest"]) for v in versions] == [("null", True), (v1, False)]


def counter(gateway, name: str) -> float:
    with urllib.request.urlopen(f"{gateway.endpoint}/metrics") as answer:
        lines = answer.read().decode().splitlines()
    return sum(float(line.rpartition(" ")[2]) for line in lines if line.split("{", 1)[0].split(" ", 1)[0] == name)


def test_a_ranged_get_of_an_old_version_fetches_only_its_frame(gateway, seaweed):
    """Each version has its own sidecar upstream: a range of an old version reads one frame of it."""
    bucket = "cli-ranged-versions"
    c = gateway.client()
    c.create_bucket(Bucket=bucket)
    c.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    old, new = text(5, 12 * MiB), text(6, 12 * MiB)  # three 4 MiB frames each
    old_id = c.put_object(Bucket=bucket, Key="big", Body=old)["VersionId"]
    c.put_object(Bucket=bucket, Key="big", Body=new)
    sidecars = [k for k in raw_versions(seaweed, bucket) if k.endswith(".s4index")]
    assert len(sidecars) == 2 and any(old_id in k for k in sidecars)
    fetched, fallbacks = (
        counter(gateway, "s4_range_frames_fetched_total"),
        counter(gateway, "s4_sidecar_fallbacks_total"),
    )
    start = 9 * MiB + 123
    answer = c.get_object(Bucket=bucket, Key="big", VersionId=old_id, Range=f"bytes={start}-{start + 999}")
    assert answer["Body"].read() == old[start : start + 1000] and answer["VersionId"] == old_id
    assert counter(gateway, "s4_range_frames_fetched_total") - fetched == 1
    assert counter(gateway, "s4_sidecar_fallbacks_total") == fallbacks
