"""Bucket documents below the HTTP layer: S3's checks of each document, CORS rule matching, the stores'
bucket documents (embedded, compressing, faulty) and the lifecycle worker with the clock set by hand."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from s4.codec import CodecDispatcher, CodecRegistry, CpuCodecPool
from s4.server.errors import S3Error
from s4.server.ops.documents import acl
from s4.server.ops.documents.cors import cors_rules, match, validate_cors
from s4.server.ops.documents.lifecycle import validate_lifecycle
from s4.server.ops.documents.policy import validate_policy
from s4.server.ops.documents.settings import (
    validate_bucket_tagging,
    validate_encryption,
    validate_notification,
    validate_ownership_controls,
    validate_public_access_block,
)
from s4.store.base import ObjectAttributes, StoreError
from s4.store.compressing.store import CompressingStore
from s4.store.filesystem import FilesystemStore
from s4.store.lifecycle import LifecycleReport, LifecycleWorker, parse_rules
from tests.faults import FaultyStore
from tests.unit.store_helpers import body

NS = 'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"'


def _error(call, *args) -> tuple[str, int]:
    with pytest.raises(S3Error) as info:
        call(*args)
    return info.value.code, info.value.status


# --- CORS -----------------------------------------------------------------------------------------------


def _cors(*rules: str) -> bytes:
    return (
        "<CORSConfiguration>" + "".join(f"<CORSRule>{r}</CORSRule>" for r in rules) + "</CORSConfiguration>"
    ).encode()


def test_cors_configuration_is_kept_in_s3s_form():
    kept = validate_cors(
        _cors(
            "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>",
            "<ID>two</ID><AllowedMethod>PUT</AllowedMethod><AllowedMethod>POST</AllowedMethod>"
            "<AllowedOrigin>https://*.example.com</AllowedOrigin><AllowedHeader>x-amz-*</AllowedHeader>"
            "<ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds>",
        )
    )
    assert kept.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<CORSConfiguration ' + NS.encode())
    rules = cors_rules(kept)
    assert rules[1].methods == ("PUT", "POST") and rules[1].max_age == 600 and rules[1].expose_headers == ("ETag",)


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ("<AllowedMethod>PATCH</AllowedMethod><AllowedOrigin>*</AllowedOrigin>", "InvalidRequest"),
        ("<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*.*.com</AllowedOrigin>", "InvalidRequest"),
        (
            "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><AllowedHeader>*a*</AllowedHeader>",
            "InvalidRequest",
        ),
        (
            "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><ExposeHeader>*</ExposeHeader>",
            "InvalidRequest",
        ),
        ("<AllowedOrigin>*</AllowedOrigin>", "MalformedXML"),
        ("<AllowedMethod>GET</AllowedMethod>", "MalformedXML"),
        ("<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><Color>red</Color>", "MalformedXML"),
        (
            "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin><MaxAgeSeconds>x</MaxAgeSeconds>",
            "MalformedXML",
        ),
    ],
)
def test_cors_configuration_refused_as_s3_refuses_it(rule, code):
    assert _error(validate_cors, _cors(rule)) == (code, 400)


def test_cors_configuration_without_rules_or_past_the_limit():
    assert _error(validate_cors, b"<CORSConfiguration/>")[0] == "MalformedXML"
    assert _error(validate_cors, b"<CORS/>")[0] == "MalformedXML"
    assert _error(validate_cors, b"")[0] == "MalformedXML"
    many = _cors(*["<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*</AllowedOrigin>"] * 101)
    assert _error(validate_cors, many)[0] == "InvalidRequest"


def test_cors_origin_patterns_match_as_s3s_do():
    # The cases of ceph/s3-tests' test_cors_origin_response.
    rules = cors_rules(
        validate_cors(
            _cors(
                "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*suffix</AllowedOrigin>",
                "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>start*end</AllowedOrigin>",
                "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>prefix*</AllowedOrigin>",
                "<AllowedMethod>PUT</AllowedMethod><AllowedOrigin>*.put</AllowedOrigin>",
            )
        )
    )
    allowed = ["foo.suffix", "startend", "start1end", "start12end", "prefix", "prefix.suffix"]
    refused = ["foo.bar", "foo.suffix.get", "0start12end", "bla.prefix", "foo.put"]
    assert all(match(rules, origin, "GET") is not None for origin in allowed)
    assert all(match(rules, origin, "GET") is None for origin in refused)
    assert match(rules, "foo.put", "PUT") is rules[3]
    assert match(rules, "foo.suffix", "PUT") is None


def test_cors_requested_headers_must_each_be_allowed():
    rules = cors_rules(
        validate_cors(
            _cors(
                "<AllowedMethod>PUT</AllowedMethod><AllowedOrigin>*</AllowedOrigin>"
                "<AllowedHeader>Content-Type</AllowedHeader><AllowedHeader>x-amz-*</AllowedHeader>"
            )
        )
    )
    assert match(rules, "o", "PUT", ["content-type", "X-Amz-Date", "x-amz-meta-a"]) is rules[0]
    assert match(rules, "o", "PUT", ["content-type", "authorization"]) is None
    assert match(rules, "o", "PUT", []) is rules[0]


# --- lifecycle ------------------------------------------------------------------------------------------


def _lifecycle(*rules: str) -> bytes:
    return (
        "<LifecycleConfiguration>" + "".join(f"<Rule>{r}</Rule>" for r in rules) + "</LifecycleConfiguration>"
    ).encode()


def test_lifecycle_rules_get_an_id_and_keep_their_form():
    kept = validate_lifecycle(
        _lifecycle(
            "<Prefix>logs/</Prefix><Status>Enabled</Status><Expiration><Days>3</Days></Expiration>",
            "<ID>mine</ID><Filter><And><Prefix>a/</Prefix><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan>"
            "</And></Filter><Status>Disabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2"
            "</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
        )
    )
    rules = parse_rules(kept)
    assert [(r.enabled, r.prefix, r.expire_days, r.larger_than) for r in rules] == [
        (True, "logs/", 3, None),
        (False, "a/", None, 10),
    ]
    assert rules[0].rule_id and rules[1].rule_id == "mine"
    assert b"<ID>mine</ID>" in kept and b"<Prefix>logs/</Prefix>" in kept


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        ("<Prefix/><Status>enabled</Status><Expiration><Days>1</Days></Expiration>", "MalformedXML"),
        (
            "<ID>" + "a" * 256 + "</ID><Prefix/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
            "InvalidArgument",
        ),
        ("<Prefix/><Status>Enabled</Status><Expiration><Days>0</Days></Expiration>", "InvalidArgument"),
        (
            "<Prefix/><Status>Enabled</Status><Expiration><Date>2030-01-01T10:00:00Z</Date></Expiration>",
            "InvalidArgument",
        ),
        ("<Prefix/><Status>Enabled</Status><Expiration><Date>soon</Date></Expiration>", "MalformedXML"),
        ("<Prefix/><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>", "MalformedXML"),
        ("<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>", "MalformedXML"),
        ("<Prefix/><Status>Enabled</Status>", "InvalidRequest"),
        (
            "<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>"
            "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>",
            "InvalidRequest",
        ),
        (
            "<Prefix/><Status>Enabled</Status><Expiration><Days>1</Days><Date>2030-01-01</Date></Expiration>",
            "MalformedXML",
        ),
        (
            "<Prefix/><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>CHEAP</StorageClass></Transition>",
            "MalformedXML",
        ),
    ],
)
def test_lifecycle_refused_as_s3_refuses_it(rule, code):
    assert _error(validate_lifecycle, _lifecycle(rule))[0] == code


def test_lifecycle_rule_ids_must_be_unique():
    rule = "<ID>same</ID><Prefix/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"
    assert _error(validate_lifecycle, _lifecycle(rule, rule)) == ("InvalidArgument", 400)


# --- the small documents --------------------------------------------------------------------------------


def test_encryption_configuration():
    kms = (
        "<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms"
        "</SSEAlgorithm><KMSMasterKeyID>key-1</KMSMasterKeyID></ApplyServerSideEncryptionByDefault>"
        "<BucketKeyEnabled>true</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>"
    )
    assert b"<KMSMasterKeyID>key-1</KMSMasterKeyID>" in validate_encryption(kms.encode())
    aes_with_key = kms.replace("aws:kms", "AES256").encode()
    assert _error(validate_encryption, aes_with_key)[0] == "InvalidArgument"
    assert _error(validate_encryption, kms.replace("aws:kms", "ROT13").encode())[0] == "MalformedXML"
    assert _error(validate_encryption, b"<ServerSideEncryptionConfiguration/>")[0] == "MalformedXML"


def test_public_access_block_ownership_and_notification():
    block = b"<PublicAccessBlockConfiguration><BlockPublicAcls>true</BlockPublicAcls></PublicAccessBlockConfiguration>"
    assert b"<BlockPublicAcls>true</BlockPublicAcls>" in validate_public_access_block(block)
    assert _error(validate_public_access_block, block.replace(b"true", b"yes"))[0] == "MalformedXML"
    ownership = b"<OwnershipControls><Rule><ObjectOwnership>ObjectWriter</ObjectOwnership></Rule></OwnershipControls>"
    assert b"ObjectWriter" in validate_ownership_controls(ownership)
    assert _error(validate_ownership_controls, ownership.replace(b"ObjectWriter", b"Anyone"))[0] == "MalformedXML"
    assert validate_notification(b"<NotificationConfiguration/>").endswith(b"</NotificationConfiguration>")
    topic = b"<NotificationConfiguration><TopicConfiguration/></NotificationConfiguration>"
    assert _error(validate_notification, topic) == ("NotImplemented", 501)


def _tagging(*pairs: tuple[str, str]) -> bytes:
    tags = "".join(f"<Tag><Key>{k}</Key><Value>{v}</Value></Tag>" for k, v in pairs)
    return f"<Tagging><TagSet>{tags}</TagSet></Tagging>".encode()


def test_bucket_tags_follow_s3s_limits():
    assert b"<Key>team</Key>" in validate_bucket_tagging(_tagging(("team", "data"), ("cost", "")))
    assert validate_bucket_tagging(_tagging(*[(f"k{i}", "v") for i in range(50)]))
    for bad in (
        _tagging(*[(f"k{i}", "v") for i in range(51)]),
        _tagging(("k", "1"), ("k", "2")),
        _tagging(("k" * 129, "v")),
        _tagging(("k", "v" * 257)),
        _tagging(("aws:cost", "v")),
        _tagging(("", "v")),
        _tagging(("k", "a|b")),
    ):
        assert _error(validate_bucket_tagging, bad)[0] == "InvalidTag"
    assert _error(validate_bucket_tagging, b"<Tagging/>")[0] == "MalformedXML"


# --- policy ---------------------------------------------------------------------------------------------


def _policy(**statement) -> bytes:
    base = {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bkt/*"}
    base.update(statement)
    return json.dumps(
        {"Version": "2012-10-17", "Statement": [{k: v for k, v in base.items() if v is not None}]}
    ).encode()


def test_a_valid_policy_is_kept_byte_for_byte():
    policy = _policy(Condition={"StringLike": {"s3:prefix": ["public/*"]}}, Principal={"AWS": ["*"]})
    assert validate_policy(policy, "bkt") == policy
    assert validate_policy(_policy(Resource=["arn:aws:s3:::bkt", "arn:aws:s3:::b*/x"], Action="*"), "bkt")


@pytest.mark.parametrize(
    "policy",
    [
        b"not json",
        b"[1, 2]",
        json.dumps({"Version": "2012-10-17"}).encode(),
        json.dumps({"Version": "2099-01-01", "Statement": []}).encode(),
        _policy(Effect="Maybe"),
        _policy(Effect=None),
        _policy(Principal=None),
        _policy(Action="ec2:RunInstances"),
        _policy(Resource="arn:aws:s3:::another-bucket/*"),
        _policy(Resource=None),
        _policy(Condition="x"),
        _policy(Colour="blue"),
        b"{" + b" " * (20 * 1024) + b"}",
    ],
)
def test_a_policy_s3_would_refuse(policy):
    assert _error(validate_policy, policy, "bkt") == ("MalformedPolicy", 400)


# --- ACLs -----------------------------------------------------------------------------------------------


def test_canned_acls_and_grant_headers():
    assert acl.default_acl("me").is_private
    public = acl.acl_from_headers({"x-amz-acl": "public-read"}, "me")
    assert public is not None and not public.is_private
    assert acl.Grant("Group", acl.ALL_USERS, "READ") in public.grants
    granted = acl.acl_from_headers(
        {"x-amz-grant-read": f'uri="{acl.AUTHENTICATED_USERS}", id="you"', "x-amz-grant-full-control": 'id="me"'}, "me"
    )
    assert granted is not None and set(granted.grants) == {
        acl.Grant("Group", acl.AUTHENTICATED_USERS, "READ"),
        acl.Grant("CanonicalUser", "you", "READ"),
        acl.Grant("CanonicalUser", "me", "FULL_CONTROL"),
    }
    assert acl.acl_from_headers({}, "me") is None
    with pytest.raises(S3Error) as info:
        acl.acl_from_headers({"x-amz-acl": "private", "x-amz-grant-read": 'id="x"'}, "me")
    assert info.value.code == "InvalidRequest"
    with pytest.raises(S3Error) as info:
        acl.acl_from_headers({"x-amz-acl": "open-to-all"}, "me")
    assert info.value.code == "InvalidArgument"


def test_acl_documents_round_trip_and_are_checked():
    kept = acl.canned_acl("public-read-write", "me").to_xml()
    stored, canned = acl.stored_acl(kept), acl.canned_acl("public-read-write", "me")
    assert (stored.owner, set(stored.grants)) == (canned.owner, set(canned.grants))  # group grants listed first
    assert acl.acl_from_document(kept, "me") == acl.stored_acl(kept)
    with pytest.raises(S3Error) as info:
        acl.acl_from_document(kept, "someone-else")
    assert info.value.code == "AccessDenied"
    for bad in (
        kept.replace(b"FULL_CONTROL", b"EVERYTHING"),
        kept.replace(b"<Owner>", b"<Boss>").replace(b"</Owner>", b"</Boss>"),
    ):
        with pytest.raises(S3Error) as info:
            acl.acl_from_document(bad, "me")
        assert info.value.code == "MalformedACLError"
    by_mail = kept.replace(b'xsi:type="Group"><URI>', b'xsi:type="AmazonCustomerByEmail"><EmailAddress>', 1)
    by_mail = by_mail.replace(b"AllUsers</URI>", b"AllUsers</EmailAddress>", 1)
    with pytest.raises(S3Error) as info:
        acl.acl_from_document(by_mail, "me")
    assert info.value.code == "UnresolvableGrantByEmailAddress"


# --- the stores' bucket documents -----------------------------------------------------------------------


def _compressing(inner) -> CompressingStore:
    return CompressingStore(inner, CpuCodecPool(CodecRegistry.cpu_default()), CodecDispatcher())


@pytest.mark.parametrize("wrap", ["embedded", "compressing", "faulty"])
def test_documents_are_kept_per_bucket_and_go_with_it(tmp_path: Path, wrap: str):
    async def scenario() -> None:
        inner = await FilesystemStore.open(tmp_path / "data", durable=False)
        store = {"embedded": inner, "compressing": _compressing(inner), "faulty": FaultyStore(inner)}[wrap]
        try:
            await store.create_bucket("one")
            await store.create_bucket("two")
            assert await store.get_bucket_document("one", "cors") is None
            await store.put_bucket_document("one", "cors", b"<a/>")
            await store.put_bucket_document("one", "cors", b"<b/>")
            await store.put_bucket_document("two", "cors", b"<c/>")
            assert await store.get_bucket_document("one", "cors") == b"<b/>"
            assert await store.get_bucket_document("two", "cors") == b"<c/>"
            await store.put_bucket_document("one", "policy", b"{}")
            assert await store.get_bucket_documents("one", ("cors", "policy", "acl")) == {
                "cors": b"<b/>",
                "policy": b"{}",
                "acl": None,
            }
            assert await store.get_bucket_documents("two", ("policy", "cors")) == {"policy": None, "cors": b"<c/>"}
            assert await store.get_bucket_documents("two", ()) == {}
            await store.delete_bucket_document("one", "cors")
            await store.delete_bucket_document("one", "cors")  # idempotent
            assert await store.get_bucket_document("one", "cors") is None
            for call in (
                store.get_bucket_document("nope", "cors"),
                store.get_bucket_documents("nope", ("cors", "policy")),
                store.get_bucket_documents("nope", ()),
                store.put_bucket_document("nope", "cors", b"x"),
                store.delete_bucket_document("nope", "cors"),
            ):
                with pytest.raises(StoreError) as info:
                    await call
                assert info.value.code == "NoSuchBucket"
            await store.delete_bucket("two")  # documents do not keep a bucket, and go with it
            await store.create_bucket("two")
            assert await store.get_bucket_document("two", "cors") is None
        finally:
            await inner.close()

    asyncio.run(scenario())


# --- the lifecycle worker -------------------------------------------------------------------------------

T0 = dt.datetime(2030, 5, 10, 15, 30, tzinfo=dt.UTC)


def _at(when: dt.datetime):
    return lambda: when


def test_days_round_up_to_midnight_utc_as_s3_counts():
    worker = LifecycleWorker(None)  # type: ignore[arg-type]
    assert worker.due(T0, 1) == dt.datetime(2030, 5, 12, tzinfo=dt.UTC)
    assert worker.due(dt.datetime(2030, 5, 10, tzinfo=dt.UTC), 1) == dt.datetime(2030, 5, 11, tzinfo=dt.UTC)
    fast = LifecycleWorker(None, day=10)  # type: ignore[arg-type]
    assert fast.due(T0, 3) == T0 + dt.timedelta(seconds=30)


def test_the_worker_expires_objects_and_aborts_uploads(tmp_path: Path):
    async def scenario() -> None:
        inner = await FilesystemStore.open(tmp_path / "data", durable=False)
        store = _compressing(inner)
        try:
            await store.create_bucket("b")
            await store.create_bucket("untouched")
            for key, size in [("logs/a", 10), ("logs/big", 5000), ("keep/a", 10), ("tagged/a", 10), ("dated/a", 1)]:
                await store.put_object("b", key, body(b"x" * size), ObjectAttributes())
            await store.put_object("b", "tagged/b", body(b"x"), ObjectAttributes(), tags={"k": "v", "other": "1"})
            await store.put_object("untouched", "logs/a", body(b"x"), ObjectAttributes())
            old_upload = await store.create_multipart_upload("b", "logs/upload", ObjectAttributes())
            other_upload = await store.create_multipart_upload("b", "keep/upload", ObjectAttributes())
            document = validate_lifecycle(
                _lifecycle(
                    "<ID>logs</ID><Filter><And><Prefix>logs/</Prefix><ObjectSizeLessThan>1000</ObjectSizeLessThan>"
                    "</And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
                    "<ID>uploads</ID><Prefix>logs/</Prefix><Status>Enabled</Status>"
                    "<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation>"
                    "</AbortIncompleteMultipartUpload>",
                    "<ID>off</ID><Prefix>keep/</Prefix><Status>Disabled</Status><Expiration><Days>1</Days></Expiration>",
                    "<ID>tags</ID><Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status>"
                    "<Expiration><Days>1</Days></Expiration>",
                    "<ID>dated</ID><Prefix>dated/</Prefix><Status>Enabled</Status>"
                    "<Expiration><Date>2031-01-01T00:00:00.000Z</Date></Expiration>",
                )
            )
            await store.put_bucket_document("b", "lifecycle", document)
            worker = LifecycleWorker(store)
            times = [o.last_modified for o in (await store.list_objects("b")).objects]
            first, last = min(times), max(times)  # a day apart if the test runs over midnight UTC

            worker.clock = _at(worker.due(first, 1) - dt.timedelta(seconds=1))
            report = await worker.run()
            assert (report.expired, report.aborted) == (0, 0)

            worker.clock = _at(worker.due(last, 1) + dt.timedelta(seconds=1))
            report = await worker.run()
            assert (report.expired, report.aborted) == (2, 0)  # logs/a, and tagged/b by its tag
            listed = await store.list_objects("b")
            assert [o.key for o in listed.objects] == ["dated/a", "keep/a", "logs/big", "tagged/a"]

            worker.clock = _at(worker.due(last, 3))
            report = await worker.run()
            assert (report.expired, report.aborted) == (0, 1)
            uploads = await store.list_multipart_uploads("b")
            assert [u.upload_id for u in uploads.uploads] == [other_upload]
            assert old_upload != other_upload

            worker.clock = _at(dt.datetime(2031, 1, 1, tzinfo=dt.UTC))
            assert (await worker.run()).expired == 1
            listed = await store.list_objects("b")
            assert [o.key for o in listed.objects] == ["keep/a", "logs/big", "tagged/a"]
            assert [o.key for o in (await store.list_objects("untouched")).objects] == ["logs/a"]
        finally:
            await inner.close()

    asyncio.run(scenario())


def test_a_rewritten_object_is_not_expired(tmp_path: Path):
    async def scenario() -> None:
        inner = await FilesystemStore.open(tmp_path / "data", durable=False)
        try:
            await inner.create_bucket("b")
            await inner.put_object("b", "k", body(b"old"), ObjectAttributes())
            listed = (await inner.list_objects("b")).objects[0]
            await inner.put_object("b", "k", body(b"new"), ObjectAttributes())
            worker = LifecycleWorker(inner)
            report = LifecycleReport()
            await worker._delete_if_unchanged("b", listed, report)  # the listing is older than the object
            assert report.expired == 0 and (await inner.head_object("b", "k")).size == 3
        finally:
            await inner.close()

    asyncio.run(scenario())


def test_over_an_upstream_that_runs_lifecycle_the_worker_expires_only_what_the_upstream_was_not_given(tmp_path: Path):
    rules = parse_rules(
        validate_lifecycle(
            _lifecycle(
                "<ID>given</ID><Prefix>logs/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
                "<ID>all</ID><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
                "<ID>dot</ID><Prefix>.s</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
                "<ID>sized</ID><Filter><ObjectSizeGreaterThan>5</ObjectSizeGreaterThan></Filter>"
                "<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
            )
        )
    )
    assert [r.carried_out_upstream() for r in rules] == [True, False, False, False]

    async def scenario() -> None:
        inner = await FilesystemStore.open(tmp_path / "data", durable=False)
        try:
            await inner.create_bucket("b")
            for key in ("logs/a", "x"):
                await inner.put_object("b", key, body(b"data"), ObjectAttributes())
            given = (
                "<Prefix>logs/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>",
                "<Prefix>x</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>"
                "<AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation>"
                "</AbortIncompleteMultipartUpload>",
            )
            await inner.put_bucket_document("b", "lifecycle", validate_lifecycle(_lifecycle(*given)))
            await inner.create_multipart_upload("b", "x-upload", ObjectAttributes())
            worker = LifecycleWorker(inner, upstream_expires=True)
            worker.clock = _at(dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
            # Both expirations are the upstream's; the upload is the gateway's staging, aborted here.
            report = await worker.run()
            assert (report.expired, report.aborted) == (0, 1)
            assert len((await inner.list_objects("b")).objects) == 2
            sized = "<Filter><ObjectSizeLessThan>10</ObjectSizeLessThan></Filter><Status>Enabled</Status>"
            sized += "<Expiration><Days>1</Days></Expiration>"
            await inner.put_bucket_document("b", "lifecycle", validate_lifecycle(_lifecycle(*given, sized)))
            assert (await worker.run()).expired == 2  # a size condition is the gateway's to apply
            assert (await inner.list_objects("b")).objects == []
        finally:
            await inner.close()

    asyncio.run(scenario())


# --- untrusted input ------------------------------------------------------------------------------------

VALID = {
    "cors": _cors(
        "<AllowedMethod>GET</AllowedMethod><AllowedOrigin>*.example.com</AllowedOrigin><MaxAgeSeconds>5</MaxAgeSeconds>"
    ),
    "lifecycle": _lifecycle(
        "<ID>a</ID><Filter><And><Prefix>p</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></And></Filter>"
        "<Status>Enabled</Status><Expiration><Date>2031-01-01T00:00:00Z</Date></Expiration>"
    ),
    "tagging": _tagging(("k", "v")),
    "encryption": b"<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>"
    b"AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>",
    "acl": acl.canned_acl("log-delivery-write", "me").to_xml(),
    "policy": _policy(),
}
CHECKS = {
    "cors": validate_cors,
    "lifecycle": validate_lifecycle,
    "tagging": validate_bucket_tagging,
    "encryption": validate_encryption,
    "acl": lambda body: acl.acl_from_document(body, "me").to_xml(),
    "policy": lambda body: validate_policy(body, "bkt"),
}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(VALID)), st.data())
def test_only_s3_errors_escape_the_document_checks(kind, data):
    valid = VALID[kind]
    cut = data.draw(st.integers(0, len(valid)))
    inserted = data.draw(st.binary(max_size=12) | st.sampled_from([b"<", b">", b"*", b"&amp;", b"<x>", b"\xff", b'"']))
    dropped = data.draw(st.integers(0, 8))
    body = valid[:cut] + inserted + valid[cut + dropped :]
    try:
        kept = CHECKS[kind](body)
    except S3Error as exc:
        assert exc.status in (400, 403, 501) and exc.code
        return
    assert CHECKS[kind](kept) == kept  # what is kept passes the check again, unchanged


def test_cors_rules_read_while_they_change_here_are_not_kept():
    """A read of a bucket's CORS rules that was under way when this process changed them (PutBucketCors,
    DeleteBucketCors: ``forget``) may have read the old document: it answers its own request, but is not
    kept, so the next request reads the new rules instead of the old ones for the cache's lifetime."""
    from s4.server.cors import CorsRules

    old = (
        b"<CORSConfiguration><CORSRule><AllowedOrigin>https://old.example</AllowedOrigin>"
        b"<AllowedMethod>GET</AllowedMethod></CORSRule></CORSConfiguration>"
    )

    class SlowStore:
        def __init__(self) -> None:
            self.document: bytes | None = old
            self.reads = 0
            self.gate = asyncio.Event()

        async def get_bucket_document(self, bucket: str, name: str) -> bytes | None:
            self.reads += 1
            document = self.document
            await self.gate.wait()
            return document

    async def scenario() -> None:
        store = SlowStore()
        cors = CorsRules(store, ttl=60)
        reading = asyncio.create_task(cors.rules("b"))
        await asyncio.sleep(0)  # the read has the old document
        store.document = None  # DeleteBucketCors here
        cors.forget("b")
        store.gate.set()
        assert await reading is not None  # the request under way answers from what it read
        assert await cors.rules("b") is None  # the next one reads again
        assert store.reads == 2

    asyncio.run(scenario())
