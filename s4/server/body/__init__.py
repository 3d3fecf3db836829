"""Request bodies, verified as they stream: aws-chunked decoding, checksums, Content-MD5, payload hashes."""
