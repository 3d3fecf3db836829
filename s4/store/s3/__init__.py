"""The upstream S3 store, through aiobotocore: AWS S3, MinIO, Ceph, SeaweedFS."""
