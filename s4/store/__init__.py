"""Object stores: the ObjectStore protocol, the embedded filesystem store, and (later) S3 and compression."""

from s4.store.base import (
    BucketInfo,
    ByteRange,
    ListPage,
    ObjectAttributes,
    ObjectInfo,
    ObjectStore,
    ObjectStream,
    PartInfo,
    PartsPage,
    StoreError,
    UploadInfo,
    UploadsPage,
)

__all__ = [
    "BucketInfo",
    "ByteRange",
    "ListPage",
    "ObjectAttributes",
    "ObjectInfo",
    "ObjectStore",
    "ObjectStream",
    "PartInfo",
    "PartsPage",
    "StoreError",
    "UploadInfo",
    "UploadsPage",
]
