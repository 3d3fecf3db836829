"""The upstream S3 store, through aiobotocore: AWS S3, MinIO, Ceph, SeaweedFS."""

from s4.store.s3.store import S3Store

__all__ = ["S3Store"]
