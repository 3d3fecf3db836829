"""GetObjectAttributes: what HEAD and ListParts would tell of an object, in one XML document.

Everything is the client's view of the object, whatever the store keeps underneath: the size is
the original size, the ETag the one GET shows, the parts the parts the client uploaded (their
original sizes, their checksums). As S3 does, only the attributes named in
``x-amz-object-attributes`` are returned; a COMPOSITE checksum comes without its ``-<parts>``
suffix (ObjectParts tells the count); parts are listed only for an object made with a checksum
algorithm, a single PUT's object has no ObjectParts at all.
"""

from __future__ import annotations

from aiohttp import web

from s4.digits import decimal
from s4.server.context import S3Request
from s4.server.errors import S3Error
from s4.server.http import http_date
from s4.server.ops.checksums import checksum_elements, element_name, kind_of
from s4.server.ops.versions import requested_version, version_headers
from s4.server.xml import document, element
from s4.store import ObjectInfo
from s4.store.checksums import without_part_count

ATTRIBUTES = ("ETag", "Checksum", "ObjectParts", "StorageClass", "ObjectSize")
MAX_PARTS = 1000
XML = "application/xml"


def requested_attributes(value: str | None) -> set[str]:
    """``x-amz-object-attributes`` (a comma-separated list): InvalidRequest when missing or empty,
    InvalidArgument for a name S3 does not know."""
    names = {n.strip() for n in (value or "").split(",") if n.strip()}
    if not names:
        raise S3Error(
            "InvalidRequest",
            "The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty",
        )
    if not names <= set(ATTRIBUTES):
        raise S3Error("InvalidArgument", "Invalid attribute name specified.")
    return names


def _int_header(req: S3Request, name: str, default: int) -> int:
    raw = req.headers.get(name)
    if raw is None:
        return default
    count = decimal(raw.strip(), max_digits=10)
    if count is None:
        raise S3Error("InvalidArgument", f"Provided {name} not an integer or within integer range")
    return count


def part_count(info: ObjectInfo) -> int | None:
    """How many parts a multipart object was uploaded in (None: a single PUT's object)."""
    if info.part_sizes:
        return len(info.part_sizes)
    count = info.etag.rpartition("-")[2] if "-" in info.etag else ""
    return decimal(count, max_digits=5)


def _object_parts(info: ObjectInfo, marker: int, max_parts: int) -> str:
    total = part_count(info)
    if total is None:
        return ""
    numbers = list(range(marker + 1, total + 1))[:max_parts]
    truncated = bool(numbers) and numbers[-1] < total
    entries = []
    checksums = info.attributes.checksums
    # S3 lists the parts only of an object with a checksum of its own (what else would they show?).
    if checksums and info.part_sizes:
        algorithm = next(iter(checksums))
        for number in numbers:
            fields = element("PartNumber", number) + element("Size", info.part_sizes[number - 1])
            if info.part_checksums is not None:
                fields += element(element_name(algorithm), info.part_checksums[number - 1])
            entries.append(f"<Part>{fields}</Part>")
    return (
        "<ObjectParts>"
        + element("PartsCount", total)  # the SDKs' TotalPartsCount
        + element("PartNumberMarker", marker)
        + (element("NextPartNumberMarker", numbers[-1]) if numbers else "")
        + element("MaxParts", max_parts)
        + element("IsTruncated", str(truncated).lower())
        + "".join(entries)
        + "</ObjectParts>"
    )


async def get_object_attributes(req: S3Request) -> web.Response:
    version = requested_version(req)
    wanted = requested_attributes(req.headers.get("x-amz-object-attributes"))
    max_parts = min(_int_header(req, "x-amz-max-parts", MAX_PARTS), MAX_PARTS)
    marker = _int_header(req, "x-amz-part-number-marker", 0)
    info = await req.store.head_object(req.bucket, req.key, **({} if version is None else {"version_id": version}))
    checksums = {a: without_part_count(v) for a, v in info.attributes.checksums.items()}
    body = document(
        "GetObjectAttributesResponse",
        [
            element("ETag", info.etag) if "ETag" in wanted else "",  # without quotes, unlike HEAD
            f"<Checksum>{checksum_elements(checksums, kind_of(info.attributes.checksums))}</Checksum>"
            if "Checksum" in wanted and checksums
            else "",
            _object_parts(info, marker, max_parts) if "ObjectParts" in wanted else "",
            element("StorageClass", "STANDARD") if "StorageClass" in wanted else "",
            element("ObjectSize", info.size) if "ObjectSize" in wanted else "",
        ],
    )
    headers = {"Last-Modified": http_date(info.last_modified), **version_headers(info.version_id)}
    return web.Response(body=body, content_type=XML, headers=headers)
