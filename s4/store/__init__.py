"""Object stores: the ObjectStore protocol and its errors; the embedded store (``filesystem``), the
upstream S3 store (``s3/``) and the S4-format wrapper over either (``compressing/``)."""

from s4.store.base import (
    BucketInfo,
    ByteRange,
    DeleteResult,
    ListPage,
    ObjectAttributes,
    ObjectInfo,
    ObjectStore,
    ObjectStream,
    PartInfo,
    PartsPage,
    StoreError,
    StoreErrorKind,
    UploadInfo,
    UploadsPage,
    VersionsPage,
    WriteCondition,
    conflicting_write,
)

__all__ = [
    "BucketInfo",
    "ByteRange",
    "DeleteResult",
    "ListPage",
    "ObjectAttributes",
    "ObjectInfo",
    "ObjectStore",
    "ObjectStream",
    "PartInfo",
    "PartsPage",
    "StoreError",
    "StoreErrorKind",
    "UploadInfo",
    "UploadsPage",
    "VersionsPage",
    "WriteCondition",
    "conflicting_write",
]
