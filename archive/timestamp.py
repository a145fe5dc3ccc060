"""RFC 3161 timestamps of a WACZ signature, through rfc3161-client (Trail of Bits).

The token is stored as authsign stores ``timeSignature``: base64 of the whole TimeStampResp,
its message imprint the SHA-256 of the ``signature`` string; ``timestampCert`` is the PEM of
the certificates the TSA put in its token, signer first.
"""

from __future__ import annotations

import base64
import hashlib
import re
import datetime
import urllib.error
import urllib.request
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from rfc3161_client import (HashAlgorithm, PKIStatus, TimestampRequestBuilder, TimeStampResponse, VerificationError,
                            VerifierBuilder, decode_timestamp_response)

from archive.signing import load_pem_chain

TIMEOUT = 30


class TimestampError(Exception):
    """The TSA could not be reached, or answered with something other than a token over our data."""


@dataclass(frozen=True)
class Token:
    response_b64: str
    cert_pem: str
    time: datetime.datetime


def _signer_first(response: TimeStampResponse) -> list[x509.Certificate]:
    certs = [x509.load_der_x509_certificate(der) for der in response.signed_data.certificates]
    signer = next(iter(response.signed_data.signer_infos))
    ordered = [c for c in certs if c.issuer == signer.issuer and c.serial_number == signer.serial_number]
    while ordered and (issuer := next((c for c in certs if c.subject == ordered[-1].issuer
                                       and c not in ordered), None)) is not None:
        ordered.append(issuer)
    return ordered + [c for c in certs if c not in ordered]


def request_token(url: str, message: bytes) -> Token:
    """Ask the TSA at ``url`` for a token over SHA-256(``message``), its certificates included."""
    request = (TimestampRequestBuilder().data(message).hash_algorithm(HashAlgorithm.SHA256)
               .nonce(nonce=True).cert_request(cert_request=True).build())
    http = urllib.request.Request(url, data=request.as_bytes(), method="POST",
                                  headers={"Content-Type": "application/timestamp-query"})
    try:
        with urllib.request.urlopen(http, timeout=TIMEOUT) as answer:
            body = answer.read()
    except urllib.error.HTTPError as exc:
        raise TimestampError(f"timestamp server {url} answered HTTP {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TimestampError(f"timestamp server {url} unreachable: {getattr(exc, 'reason', exc)}") from None
    try:
        response = decode_timestamp_response(body)
    except ValueError:
        raise TimestampError(f"timestamp server {url} answered with no RFC 3161 response") from None
    if PKIStatus(response.status) not in (PKIStatus.GRANTED, PKIStatus.GRANTED_WITH_MODS):
        raise TimestampError(f"timestamp server {url} refused: {' '.join(response.status_string) or response.status}")
    if response.tst_info.nonce != request.nonce:
        raise TimestampError(f"timestamp server {url} answered another request (nonce differs)")
    certs = _signer_first(response)
    if not certs:
        raise TimestampError(f"timestamp server {url} put no certificate in its token")
    if response.tst_info.message_imprint.message != hashlib.sha256(message).digest():
        raise TimestampError(f"timestamp server {url} answered a token over other data")
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)
    return Token(base64.b64encode(response.as_bytes()).decode("ascii"), pem, response.tst_info.gen_time)


def _reason(exc: Exception) -> str:
    """OpenSSL's own words, not its error stack."""
    text = str(exc)
    if "Verify error:" in text:
        return text.split("Verify error:", 1)[1].split('"', 1)[0].strip()
    reasons = re.findall(r'reason: "([^"]+)"', text)
    return reasons[-1] if reasons else text


def verify_token(response_b64: str, cert_pem: str, message: bytes,
                 trust: list[x509.Certificate] | None) -> tuple[datetime.datetime | None, list[str]]:
    """The token's time and the problems found: unreadable, over other data, untrusted TSA.

    Without ``trust`` only the message imprint is compared: the time is then the TSA's claim,
    unproven (its signature needs the TSA's root to check).
    """
    try:
        response = decode_timestamp_response(base64.b64decode(response_b64, validate=True))
    except ValueError:
        return None, ["timeSignature: not a base64 RFC 3161 TimeStampResp"]
    try:
        chain = load_pem_chain(cert_pem)
    except ValueError:
        return None, ["timestampCert: not a PEM certificate chain"]
    if response.tst_info.message_imprint.message != hashlib.sha256(message).digest():
        return None, ["timestamp: the token is over other data than this signature"]
    if trust is None:
        return response.tst_info.gen_time, []
    builder = VerifierBuilder(tsa_certificate=chain[0], roots=list(trust))
    try:
        builder.build().verify_message(response, message)
    except VerificationError as exc:
        why = _reason(exc)
        if "issuer certificate" in why or "self-signed" in why or "self signed" in why:
            return None, [f"timestamp: TSA {chain[0].subject.rfc4514_string()} is not trusted ({why})"]
        return None, [f"timestamp: token does not verify: {why}"]
    return response.tst_info.gen_time, []
