"""ListBuckets, CreateBucket, DeleteBucket, HeadBucket, GetBucketLocation."""

from __future__ import annotations

from aiohttp import web

from s4.server.addressing import check_bucket_name
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.ops.documents.handlers import creation_documents, keep_creation_documents
from s4.server.xml import child_text, document, element, iso8601, local_name, owner_xml, parse_xml
from s4.store import StoreError

XML = "application/xml"


async def list_buckets(req: S3Request) -> web.Response:
    buckets = await req.store.list_buckets()
    entries = "".join(
        f"<Bucket>{element('Name', b.name)}{element('CreationDate', iso8601(b.created))}</Bucket>" for b in buckets
    )
    body = document("ListAllMyBucketsResult", [owner_xml(req.owner_id), f"<Buckets>{entries}</Buckets>"])
    return web.Response(body=body, content_type=XML)


async def create_bucket(req: S3Request) -> web.Response:
    check_bucket_name(req.bucket)
    body = await req.read_small_body()
    if body.strip():
        root = parse_xml(body)
        if local_name(root.tag) != "CreateBucketConfiguration":
            raise S3Error("MalformedXML", "The XML you provided was not well-formed or did not validate")
        child_text(root, "LocationConstraint")  # any region is accepted: there is one store
    documents = await creation_documents(req)  # ACL and object ownership headers, checked first
    recreated = False
    try:
        await req.store.create_bucket(req.bucket)
    except StoreError as exc:
        # us-east-1 answers a repeated CreateBucket by the owner with 200, every other region with 409.
        if exc.code != "BucketAlreadyOwnedByYou" or req.config.region != "us-east-1":
            raise
        recreated = True
    await keep_creation_documents(req, documents, recreated)
    return web.Response(status=200, headers={"Location": f"/{req.bucket}"})


async def delete_bucket(req: S3Request) -> web.Response:
    await req.store.delete_bucket(req.bucket)
    return web.Response(status=204)


async def head_bucket(req: S3Request) -> web.Response:
    await req.store.head_bucket(req.bucket)
    return web.Response(status=200, headers={"x-amz-bucket-region": req.config.region})


async def get_bucket_location(req: S3Request) -> web.Response:
    await req.store.head_bucket(req.bucket)
    region = "" if req.config.region == "us-east-1" else req.config.region
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<LocationConstraint xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{region}</LocationConstraint>'
    ).encode()
    return web.Response(body=body, content_type=XML)
