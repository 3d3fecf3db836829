"""AWS Signature Version 4 verification for the S3 front end, header and presigned-query forms.

Every request must be signed: the gateway holds the object data of whoever owns the
credentials, so there is no anonymous access. The rules follow what S3 itself accepts,
so that every SDK and CLI that works against AWS works here unchanged.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from urllib.parse import quote, unquote_to_bytes

from s4.server.auth.sigv2 import is_presigned_v2, verify_presigned_v2
from s4.server.errors import S3Error
from s4.server.headers import collect_headers, header_value

ALGORITHM = "AWS4-HMAC-SHA256"
SERVICE = "s3"
TERMINATOR = "aws4_request"
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
MAX_SKEW = timedelta(minutes=15)
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600

_PRESIGNED_UNSIGNED_OK = frozenset({"x-amz-content-sha256"})
_AMZ_DATE = re.compile(r"[0-9]{8}T[0-9]{6}Z")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_DIGITS = re.compile(r"[0-9]+")
_SIGNATURE = re.compile(r"[0-9a-f]{64}")
PRESIGN_PARAMS = (
    "X-Amz-Algorithm",
    "X-Amz-Credential",
    "X-Amz-Signature",
    "X-Amz-Date",
    "X-Amz-SignedHeaders",
    "X-Amz-Expires",
)
_SIGNATURE_MISMATCH = (
    "The request signature we calculated does not match the signature you provided. Check your key and signing method."
)


@dataclass(frozen=True)
class Credential:
    access_key_id: str
    secret_access_key: str


class Credentials:
    """The access keys this gateway accepts; more than one lets keys be rotated without downtime."""

    def __init__(self, pairs: Iterable[Credential]) -> None:
        self._secrets = {pair.access_key_id: pair.secret_access_key for pair in pairs}

    def replace(self, pairs: Iterable[Credential]) -> None:
        """The new set at once (SIGHUP): a request sees the old set or the new one, never a mix."""
        self._secrets = {pair.access_key_id: pair.secret_access_key for pair in pairs}

    def secret_for(self, access_key_id: str) -> str | None:
        return self._secrets.get(access_key_id)

    def __len__(self) -> int:
        return len(self._secrets)


class PayloadMode(enum.Enum):
    UNSIGNED = "UNSIGNED-PAYLOAD"
    SHA256 = "sha256"
    STREAMING_SIGNED = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
    STREAMING_SIGNED_TRAILER = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
    STREAMING_UNSIGNED_TRAILER = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    @property
    def streaming(self) -> bool:
        return self in _STREAMING_MODES

    @property
    def has_trailer(self) -> bool:
        return self in (PayloadMode.STREAMING_SIGNED_TRAILER, PayloadMode.STREAMING_UNSIGNED_TRAILER)

    @property
    def signed_chunks(self) -> bool:
        return self in (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER)


_STREAMING_MODES = frozenset(
    (PayloadMode.STREAMING_SIGNED, PayloadMode.STREAMING_SIGNED_TRAILER, PayloadMode.STREAMING_UNSIGNED_TRAILER)
)
_MODE_BY_TOKEN = {mode.value: mode for mode in PayloadMode if mode is not PayloadMode.SHA256}


@dataclass(frozen=True)
class AuthContext:
    """What a verified request hands on to the body layer: enough to check chunk signatures and digests."""

    access_key_id: str
    payload_mode: PayloadMode
    payload_sha256: str | None
    signing_key: bytes
    seed_signature: str
    amz_date: str
    scope: str
    presigned: bool


# --- headers -------------------------------------------------------------------------------


# --- canonical request pieces -----------------------------------------------------------------


def _uri_encode(raw: bytes, safe: str) -> str:
    # quote() leaves A-Z a-z 0-9 - _ . ~ alone and writes upper-case %XX, exactly SigV4's rule.
    return quote(raw, safe=safe)


def _raw(text: str) -> bytes:
    """The bytes the client sent: aiohttp decodes request bytes that are not UTF-8 as lone surrogates."""
    return text.encode("utf-8", errors="surrogateescape")


def canonical_uri(raw_path: str) -> str:
    """S3 signs the path encoded once: decode whatever the client sent, then encode canonically."""
    if not raw_path:
        return "/"
    return _uri_encode(unquote_to_bytes(_raw(raw_path)), safe="/")


def parse_query(raw_query: str) -> list[tuple[str, str]]:
    """Decoded (key, value) pairs; '+' stays '+' because SigV4 clients encode a space as %20."""
    pairs = []
    for part in raw_query.split("&"):
        if not part:
            continue
        key, _, value = part.partition("=")
        pairs.append((_decode_component(key), _decode_component(value)))
    return pairs


def _decode_component(text: str) -> str:
    return unquote_to_bytes(_raw(text)).decode("utf-8", errors="surrogateescape")


def _encode_component(text: str) -> str:
    return _uri_encode(text.encode("utf-8", errors="surrogateescape"), safe="")


def canonical_query(pairs: Iterable[tuple[str, str]], exclude: str | None = None) -> str:
    encoded = sorted((_encode_component(k), _encode_component(v)) for k, v in pairs if k != exclude)
    return "&".join(f"{k}={v}" for k, v in encoded)


def _trim(value: str) -> str:
    return " ".join(value.split())


def canonical_headers(collected: dict[str, list[str]], signed: list[str]) -> str:
    lines = []
    for name in signed:
        values = collected.get(name, [])
        lines.append(f"{name}:{','.join(_trim(v) for v in values)}\n")
    return "".join(lines)


def canonical_request(
    method: str, uri: str, query: str, headers_block: str, signed: list[str], payload_hash: str
) -> str:
    return "\n".join((method, uri, query, headers_block, ";".join(signed), payload_hash))


def string_to_sign(amz_date: str, scope: str, request: str) -> str:
    digest = hashlib.sha256(request.encode("utf-8", errors="surrogateescape")).hexdigest()
    return f"{ALGORITHM}\n{amz_date}\n{scope}\n{digest}"


@lru_cache(maxsize=512)
def signing_key(secret: str, date: str, region: str, service: str) -> bytes:
    """Derived once per key and day: four HMACs that would otherwise run on every request."""
    key = hmac.digest(f"AWS4{secret}".encode(), _raw(date), "sha256")
    for part in (region, service, TERMINATOR):
        key = hmac.digest(key, _raw(part), "sha256")
    return key


def sign(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode("utf-8", errors="surrogateescape"), hashlib.sha256).hexdigest()


def signatures_equal(expected: str, provided: str) -> bool:
    return hmac.compare_digest(expected.encode("ascii"), provided.encode("utf-8", errors="surrogateescape"))


# --- parsed authorization ----------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    access_key_id: str
    date: str
    region: str
    service: str

    @property
    def text(self) -> str:
        return f"{self.date}/{self.region}/{self.service}/{TERMINATOR}"


@dataclass(frozen=True)
class _Parsed:
    """The pieces of either form of SigV4 authentication, parsed but not yet checked."""

    scope: _Scope
    signed_headers: list[str]
    signature: str
    amz_date: str
    request_time: datetime
    payload_hash: str
    presigned: bool
    expires: int | None = None


def _header_malformed(detail: str) -> S3Error:
    return S3Error("AuthorizationHeaderMalformed", f"The authorization header is malformed; {detail}")


def _credential_malformed(detail: str) -> S3Error:
    return S3Error("AuthorizationQueryParametersError", f"Error parsing the X-Amz-Credential parameter; {detail}")


def _parse_scope(credential: str, amz_date: str, malformed: Callable[[str], S3Error]) -> _Scope:
    """S3 words a bad scope differently in each form, hence ``malformed``."""
    parts = credential.split("/")
    if len(parts) != 5 or not all(parts):
        raise malformed('the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".')
    access_key, date, region, service, terminator = parts
    if terminator != TERMINATOR:
        raise malformed(f'incorrect terminal "{terminator}". This endpoint uses "{TERMINATOR}".')
    if service != SERVICE:
        raise malformed(f'incorrect service "{service}". This endpoint belongs to "{SERVICE}".')
    if date != amz_date[:8]:
        raise malformed(f'Invalid credential date "{date}". This date is not the same as X-Amz-Date: "{amz_date[:8]}".')
    return _Scope(access_key, date, region, service)


def _parse_signed_headers(text: str, malformed: Callable[[str], S3Error]) -> list[str]:
    names = text.split(";")
    if not all(names):
        raise malformed("the SignedHeaders list is mal-formed.")
    return [name.lower() for name in names]


def _parse_amz_date(text: str) -> datetime | None:
    if not _AMZ_DATE.fullmatch(text):
        return None
    try:
        return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        return None


def _request_time(collected: dict[str, list[str]]) -> tuple[str, datetime]:
    """The signing time from x-amz-date, else Date, as (ISO-basic string the signer used, datetime)."""
    amz_date = header_value(collected, "x-amz-date")
    if amz_date is not None:
        parsed = _parse_amz_date(amz_date.strip())
        if parsed is not None:
            return amz_date.strip(), parsed
    else:
        date = header_value(collected, "date")
        parsed = _parse_http_date(date) if date is not None else None
        if parsed is not None:
            return parsed.strftime("%Y%m%dT%H%M%SZ"), parsed
    raise S3Error("AccessDenied", "AWS authentication requires a valid Date or x-amz-date header")


def _parse_http_date(text: str) -> datetime | None:
    try:
        parsed = parsedate_to_datetime(text)
        # A date at the edge of datetime's range can overflow when moved to UTC.
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (TypeError, ValueError, OverflowError):
        return None


def _authorization_fields(value: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for item in value.split(","):
        key, sep, val = item.strip().partition("=")
        if sep:
            key = key.strip()
            if key in fields:
                # Which of two Signatures counts is a guess a proxy or log reader may make differently.
                raise _header_malformed(f"the {key} component appears more than once.")
            fields[key] = val.strip()
    return fields


def _parse_header_form(authorization: str, collected: dict[str, list[str]]) -> _Parsed:
    algorithm, _, rest = authorization.strip().partition(" ")
    if algorithm == "AWS":
        raise S3Error("InvalidRequest", "Please use AWS4-HMAC-SHA256.")
    if algorithm != ALGORITHM:
        raise S3Error("InvalidArgument", "Unsupported Authorization Type", extra=_argument("Authorization", algorithm))
    fields = _authorization_fields(rest)
    if not all(fields.get(name) for name in ("Credential", "SignedHeaders", "Signature")):
        raise _header_malformed(
            "the authorization header requires three components: Credential, SignedHeaders, and Signature."
        )
    amz_date, request_time = _request_time(collected)
    return _Parsed(
        scope=_parse_scope(fields["Credential"], amz_date, _header_malformed),
        signed_headers=_parse_signed_headers(fields["SignedHeaders"], _header_malformed),
        signature=fields["Signature"],
        amz_date=amz_date,
        request_time=request_time,
        payload_hash=_required_content_sha256(collected),
        presigned=False,
    )


def _required_content_sha256(collected: dict[str, list[str]]) -> str:
    value = header_value(collected, "x-amz-content-sha256")
    if value is None:
        raise S3Error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    return value


def _query_error(message: str) -> S3Error:
    return S3Error("AuthorizationQueryParametersError", message)


def _presign_params(pairs: list[tuple[str, str]]) -> dict[str, str]:
    params: dict[str, str] = {}
    for key, value in pairs:
        if key in PRESIGN_PARAMS:
            if key in params:
                raise _query_error(f"{key} must appear only once.")
            params[key] = value
    if not all(params.get(name) for name in PRESIGN_PARAMS):
        raise _query_error(
            "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, "
            "X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
        )
    return params


def _presign_expires(text: str) -> int:
    # ASCII digits only: str.isdigit() also takes '²' and other digits int() refuses.
    if not _DIGITS.fullmatch(text):
        raise _query_error("X-Amz-Expires should be a number")
    # Any longer number is over the limit anyway, and int() refuses more than 4300 digits.
    expires = int(text) if len(text) <= 20 else MAX_PRESIGN_EXPIRES + 1
    if expires < 1:
        raise _query_error("X-Amz-Expires must be non-negative")
    if expires > MAX_PRESIGN_EXPIRES:
        raise _query_error("X-Amz-Expires must be less than a week (in seconds) that is 604800")
    return expires


def _parse_query_form(pairs: list[tuple[str, str]]) -> _Parsed:
    params = _presign_params(pairs)
    if params["X-Amz-Algorithm"] != ALGORITHM:
        raise _query_error('X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"')
    amz_date = params["X-Amz-Date"]
    request_time = _parse_amz_date(amz_date)
    if request_time is None:
        raise _query_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    expires = _presign_expires(params["X-Amz-Expires"])
    payload_hash = next((v for k, v in pairs if k.lower() == "x-amz-content-sha256"), PayloadMode.UNSIGNED.value)
    return _Parsed(
        scope=_parse_scope(params["X-Amz-Credential"], amz_date, _credential_malformed),
        signed_headers=_parse_signed_headers(params["X-Amz-SignedHeaders"], _credential_malformed),
        signature=params["X-Amz-Signature"],
        amz_date=amz_date,
        request_time=request_time,
        payload_hash=payload_hash,
        presigned=True,
        expires=expires,
    )


def _argument(name: str, value: str) -> dict[str, str]:
    return {"ArgumentName": name, "ArgumentValue": value}


def parse_payload_mode(payload_hash: str) -> PayloadMode:
    mode = _MODE_BY_TOKEN.get(payload_hash)
    if mode is not None:
        return mode
    if _HEX64.fullmatch(payload_hash):
        return PayloadMode.SHA256
    raise S3Error(
        "InvalidArgument",
        "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, "
        "STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value.",
        extra=_argument("x-amz-content-sha256", payload_hash),
    )


# --- checks --------------------------------------------------------------------------------------


def _utc(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _skewed(parsed: _Parsed, now: datetime) -> S3Error:
    return S3Error(
        "RequestTimeTooSkewed",
        "The difference between the request time and the current time is too large.",
        extra={
            "RequestTime": parsed.amz_date,
            "ServerTime": _iso(now),
            "MaxAllowedSkewMilliseconds": str(int(MAX_SKEW.total_seconds() * 1000)),
        },
    )


def _check_time(parsed: _Parsed, now: datetime) -> None:
    """Header form: within 15 minutes either way. Presigned: not from the future, and not expired."""
    expires = parsed.expires
    if expires is None:
        if abs(now - parsed.request_time) > MAX_SKEW:
            raise _skewed(parsed, now)
        return
    if parsed.request_time - now > MAX_SKEW:
        raise _skewed(parsed, now)
    expiry = parsed.request_time + timedelta(seconds=expires)
    if now > expiry:
        raise S3Error(
            "AccessDenied",
            "Request has expired",
            extra={"X-Amz-Expires": str(expires), "Expires": _iso(expiry), "ServerTime": _iso(now)},
        )


def _check_signed_headers(parsed: _Parsed, collected: dict[str, list[str]]) -> None:
    """host must be signed, and so must every x-amz-* header actually sent (presigned URLs too, as on S3).

    An unsigned x-amz-* header could change what the request does (a copy source, a
    checksum, metadata) without invalidating the signature, so S3 refuses it.
    """
    signed = set(parsed.signed_headers)
    missing = [] if "host" in signed else ["host"]
    # A presigned request takes its payload mode from the query, so an unsigned x-amz-content-sha256 changes nothing.
    unsigned_ok = _PRESIGNED_UNSIGNED_OK if parsed.presigned else frozenset()
    missing += sorted(n for n in collected if n.startswith("x-amz-") and n not in signed and n not in unsigned_ok)
    if missing:
        raise S3Error(
            "AccessDenied",
            "There were headers present in the request which were not signed",
            extra={"HeadersNotSigned": ", ".join(missing)},
        )


def secret_of(credentials: Credentials, access_key_id: str) -> str:
    """The secret of a known access key, or the InvalidAccessKeyId S3 answers (header, presigned and form auth)."""
    secret = credentials.secret_for(access_key_id)
    if secret is None:
        raise S3Error(
            "InvalidAccessKeyId",
            "The AWS Access Key Id you provided does not exist in our records.",
            extra={"AWSAccessKeyId": access_key_id},
        )
    return secret


def _verify_signature(
    parsed: _Parsed,
    method: str,
    raw_path: str,
    pairs: list[tuple[str, str]],
    collected: dict[str, list[str]],
    key: bytes,
) -> None:
    request = canonical_request(
        method,
        canonical_uri(raw_path),
        canonical_query(pairs, exclude="X-Amz-Signature" if parsed.presigned else None),
        canonical_headers(collected, parsed.signed_headers),
        parsed.signed_headers,
        parsed.payload_hash,
    )
    to_sign = string_to_sign(parsed.amz_date, parsed.scope.text, request)
    expected = sign(key, to_sign)
    if not _SIGNATURE.fullmatch(parsed.signature) or not signatures_equal(expected, parsed.signature):
        raise S3Error(
            "SignatureDoesNotMatch",
            _SIGNATURE_MISMATCH,
            extra={
                "AWSAccessKeyId": parsed.scope.access_key_id,
                "StringToSign": to_sign,
                "SignatureProvided": parsed.signature,
                "CanonicalRequest": request,
            },
        )


def _is_presigned(pairs: list[tuple[str, str]]) -> bool:
    return any(key in ("X-Amz-Algorithm", "X-Amz-Signature", "X-Amz-Credential") for key, _ in pairs)


def _is_sigv2_query(pairs: list[tuple[str, str]]) -> bool:
    keys = {key for key, _ in pairs}
    return "AWSAccessKeyId" in keys and "Signature" in keys


def authenticate(
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Mapping[str, str],
    credentials: Credentials,
    now: datetime | None = None,
) -> AuthContext:
    """Verify a request's SigV4 signature and return what the body layer needs, or raise S3Error."""
    collected = collect_headers(headers)
    pairs = parse_query(raw_query)
    authorization = header_value(collected, "authorization")
    presigned = _is_presigned(pairs)
    if authorization is not None and presigned:
        raise S3Error(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query "
            "string parameter or the Authorization header should be specified",
            extra=_argument("Authorization", authorization),
        )
    current = _utc(now)
    if authorization is not None:
        parsed = _parse_header_form(authorization, collected)
    elif presigned:
        parsed = _parse_query_form(pairs)
    elif is_presigned_v2(pairs):
        access_key_id = verify_presigned_v2(method, raw_path, pairs, collected, credentials.secret_for, current)
        return AuthContext(access_key_id, PayloadMode.UNSIGNED, None, b"", "", "", "", presigned=True)
    elif _is_sigv2_query(pairs):
        raise S3Error("InvalidRequest", "Please use AWS4-HMAC-SHA256.")
    else:
        raise S3Error("AccessDenied", "Anonymous access is forbidden for this gateway")
    mode = parse_payload_mode(parsed.payload_hash)
    _check_signed_headers(parsed, collected)
    secret = secret_of(credentials, parsed.scope.access_key_id)
    _check_time(parsed, current)
    key = signing_key(secret, parsed.scope.date, parsed.scope.region, parsed.scope.service)
    _verify_signature(parsed, method, raw_path, pairs, collected, key)
    return AuthContext(
        access_key_id=parsed.scope.access_key_id,
        payload_mode=mode,
        payload_sha256=parsed.payload_hash.lower() if mode is PayloadMode.SHA256 else None,
        signing_key=key,
        seed_signature=parsed.signature,
        amz_date=parsed.amz_date,
        scope=parsed.scope.text,
        presigned=parsed.presigned,
    )
