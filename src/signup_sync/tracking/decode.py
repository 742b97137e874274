"""Reading a tracking request: the write key, the (possibly gzipped) body, the JSON in it."""

from __future__ import annotations

import base64
import binascii
import zlib
from typing import Any

import orjson

from signup_sync.errors import DomainError, PayloadTooLarge, Unauthorized


class TrackingBadRequest(DomainError):
    """A 400 the Segment/Rudder clients can log: they read ``code`` and ``message``."""

    status_code = 400
    code = "bad_request"

    def body(self) -> dict[str, Any]:
        return {**super().body(), "code": self.code, "message": self.message}


class WriteKeyRejected(Unauthorized):
    scheme = 'Basic realm="tracking"'

    def body(self) -> dict[str, Any]:
        return {**super().body(), "code": self.code, "message": self.message}


def basic_user(authorization: str | None) -> str | None:
    """The user name of an ``Authorization: Basic`` header (Segment's write key), if any."""
    if not authorization:
        return None
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise WriteKeyRejected(
            "Send the write key as the Basic-auth user name (Authorization: Basic "
            "base64('<write key>:'))"
        )
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise WriteKeyRejected("The Basic-auth credentials are not valid base64 UTF-8") from None
    return decoded.partition(":")[0]


def decompress(body: bytes, encoding: str | None, limit: int) -> bytes:
    """Undo Content-Encoding, refusing output past ``limit`` bytes (no zip bombs)."""
    name = (encoding or "identity").strip().lower()
    if name in ("", "identity"):
        return body
    if name in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif name == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise TrackingBadRequest(
            f"Content-Encoding {name!r} is not supported; send gzip or an uncompressed body",
            field="Content-Encoding",
        )
    out = bytearray()
    data = body
    while data:  # gzip allows several members one after another
        inflater = zlib.decompressobj(wbits)
        try:
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) <= limit and not inflater.unconsumed_tail:
                out += inflater.flush()
        except zlib.error:
            raise TrackingBadRequest(
                f"The body is not valid {name} data", field="Content-Encoding"
            ) from None
        if len(out) > limit:
            raise PayloadTooLarge(f"The decompressed body exceeds {limit} bytes", field="body")
        if not inflater.eof:
            raise TrackingBadRequest(f"The {name} body is truncated", field="body")
        data = inflater.unused_data if wbits > zlib.MAX_WBITS else b""
    return bytes(out)


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise TrackingBadRequest("The body is empty; send a JSON object", field="body")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise TrackingBadRequest(f"The body is not valid JSON: {exc}", field="body") from None
    if not isinstance(data, dict):
        raise TrackingBadRequest("The body must be a JSON object", field="body")
    return data
