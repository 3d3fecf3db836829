"""The S3 front end: routing, SigV4, aws-chunked bodies, checksums, XML and S3 errors. No codec here."""
