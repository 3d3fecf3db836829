"""Who is asking: SigV4 (header, presigned, chunk signatures) and SigV2 presigned URLs."""
