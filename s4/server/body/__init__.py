"""Request bodies, verified as they stream: aws-chunked decoding with chunk signatures, checksums
(header or trailer), Content-MD5 and the signed payload hash; nothing is stored unless all agree."""

from s4.server.body.checksums import BodyDigests
from s4.server.body.chunked import AwsChunkedDecoder
from s4.server.body.verified import VerifiedBody

__all__ = ["AwsChunkedDecoder", "BodyDigests", "VerifiedBody"]
