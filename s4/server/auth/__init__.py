"""Who is asking: SigV4 (Authorization header, presigned URLs, the signing key chain used by chunk
signatures) and SigV2 presigned URLs as ``aws s3 presign`` still makes them."""

from s4.server.auth.sigv4 import AuthContext, Credential, Credentials, PayloadMode, authenticate

__all__ = ["AuthContext", "Credential", "Credentials", "PayloadMode", "authenticate"]
