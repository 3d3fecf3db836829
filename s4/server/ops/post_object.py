"""PostObject: a browser form upload, ``multipart/form-data`` POSTed to the bucket.

What a page sends when it lets a user upload straight to the bucket (boto3's
``generate_presigned_post``, the AWS SDKs' presigned POST, an HTML ``<form>``): the fields, a
policy signed by whoever serves the page, then the file. The fields say where and how the
object is stored (``key``, with ``${filename}`` replaced by the file's name; ``Content-Type``,
``Cache-Control`` and the other stored headers; ``x-amz-meta-*``; ``tagging``, a Tagging
document as PutObjectTagging takes; a checksum or Content-MD5) and what to answer
(``success_action_redirect``: 303 to that URL with bucket, key and ETag; else
``success_action_status`` 200, 201 with a PostResponse document, or 204).

The signature is checked before the policy, the policy before a byte of the file is read
(a form with neither is anonymous: allowed only into a bucket that lets anyone write),
and the file streams into the store through the same checks as a PutObject body, with the
policy's content-length-range enforced as it arrives: a file outside the range, or one that
fails a digest, is never stored. The signer must be allowed ``s3:PutObject`` on the key
(s4.server.access); the ``acl`` field gives the object its ACL, as PutObject's ``x-amz-acl``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web
from multidict import CIMultiDict

from s4.server.access.authorize import authorize_form
from s4.server.auth.post_policy import PostPolicy, parse_policy
from s4.server.auth.post_signature import anonymous_form, authenticate_form, missing_field
from s4.server.body.form import FormFile, read_form
from s4.server.body.verified import VerifiedBody
from s4.server.context import MAX_OBJECT_BYTES, S3Request
from s4.server.errors import S3Error
from s4.server.http import attributes_from_headers
from s4.server.ops.documents.object_acl import form_acl, keep_acl
from s4.server.ops.tagging import tags_from_document
from s4.server.xml import XML_HEAD, element
from s4.store import ObjectInfo

FILENAME = "${filename}"
_DIGEST_FIELDS = ("content-md5", "x-amz-checksum-")


async def post_object(req: S3Request) -> web.Response:
    fields, upload = await read_form(req.http, req.config.limits)
    if upload is None:
        raise S3Error(
            "InvalidArgument",
            "POST requires exactly one file upload per request.",
            extra={"ArgumentName": "file", "ArgumentValue": "0"},
        )
    if req.credentials is None:
        raise S3Error("InternalError", "We encountered an internal error. Please try again.")
    key = _key(fields, upload)
    policy = None
    if not anonymous_form(fields):  # an anonymous form (no signature, no policy) has anyone's rights
        form_auth = authenticate_form(fields, req.credentials)
        req.auth = form_auth.context
        policy = parse_policy(fields["policy"])
        policy.check({**fields, "bucket": req.bucket or "", "key": key}, form_auth.exempt, dt.datetime.now(dt.UTC))
    await authorize_form(req, key)  # the signer's rights, as for its PutObject
    chosen_acl = await form_acl(req, fields, key)
    tags = tags_from_document(fields["tagging"].encode()) if "tagging" in fields else None
    attributes = attributes_from_headers(CIMultiDict(fields))
    digests = CIMultiDict((name, value) for name, value in fields.items() if name.startswith(_DIGEST_FIELDS))
    body = VerifiedBody(_within_range(upload, policy), digests, req.auth, max_size=MAX_OBJECT_BYTES)
    req.body = body
    # The body fills in its verified checksums before it ends; the store reads attributes after that.
    attributes = dataclasses.replace(attributes, checksums=body.checksums)
    info = await req.store.put_object(req.bucket, key, body, attributes, tags=tags)
    if chosen_acl is not None:
        await keep_acl(req, key, chosen_acl, info)
    return _answer(req, fields, info, body.checksums)


def _key(fields: Mapping[str, str], upload: FormFile) -> str:
    key = fields.get("key", "").replace(FILENAME, upload.filename)
    if not key:
        raise missing_field("key")
    return key


async def _within_range(upload: FormFile, policy: PostPolicy | None) -> AsyncIterator[bytes]:
    """The file's bytes, failing (so that nothing is stored) once they leave content-length-range."""
    size = 0
    async for chunk in upload.chunks():
        size += len(chunk)
        if policy is not None:
            policy.check_size(size, final=False)
        yield chunk
    if policy is not None:
        policy.check_size(size, final=True)


def _location(req: S3Request, key: str) -> str:
    """The object's URL, addressed as the form was (path style or virtual-hosted)."""
    path = req.http.path.rstrip("/")
    return f"{req.http.scheme}://{req.http.host}{quote(path)}/{quote(key, safe='/~')}"


def _redirect_target(fields: Mapping[str, str]) -> str | None:
    """success_action_redirect (or its old name, redirect) when it is a URL S3 would follow."""
    url = fields.get("success_action_redirect") or fields.get("redirect")
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def _answer(req: S3Request, fields: Mapping[str, str], info: ObjectInfo, checksums: Mapping[str, str]) -> web.Response:
    location = _location(req, info.key)
    headers = {"ETag": info.quoted_etag, "Location": location}
    headers.update({f"x-amz-checksum-{algorithm}": value for algorithm, value in checksums.items()})
    target = _redirect_target(fields)
    if target is not None:
        query = urlencode([("bucket", info.bucket), ("key", info.key), ("etag", info.quoted_etag)], quote_via=quote)
        headers["Location"] = f"{target}{'&' if '?' in target else '?'}{query}"
        return web.Response(status=303, headers=headers)
    status = fields.get("success_action_status")
    if status == "201":
        body = (
            XML_HEAD
            + "<PostResponse>"
            + element("Location", location)
            + element("Bucket", info.bucket)
            + element("Key", info.key)
            + element("ETag", info.quoted_etag)
            + "</PostResponse>"
        )
        return web.Response(status=201, body=body.encode(), content_type="application/xml", headers=headers)
    return web.Response(status=200 if status == "200" else 204, headers=headers)
