"""Keys and signatures of the WACZ Signing and Verification recommendation (wacz-auth 0.1.0).

Two forms of ``signedData`` are read, one is written:

- anonymous (written): what ArchiveWeb.page makes and ReplayWeb.page checks through WebCrypto.
  An ECDSA P-384 key; the signature is ECDSA with SHA-256 over the UTF-8 bytes of the whole
  ``hash`` string (``sha256:`` prefix included), encoded raw r‖s (IEEE P1363, what WebCrypto
  returns), base64; ``publicKey`` is the base64 DER SubjectPublicKeyInfo.
- domain-signed (read): what authsign makes. The key is the domain certificate's (P-256 at
  the time of writing), the signature DER-encoded ECDSA-SHA256 over the same bytes.
"""

from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

CURVE = ec.SECP384R1
ANONYMOUS_KEYS = frozenset({"hash", "created", "software", "version", "signature", "publicKey"})
DOMAIN_KEYS = frozenset({"hash", "created", "software", "version", "signature", "domain", "domainCert",
                         "timeSignature", "timestampCert", "crossSignedCert"})


class SigningKeyError(Exception):
    """A key file that cannot be written or read as a P-384 ECDSA private key."""


def generate_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePrivateKey:
    """Write a new P-384 key as unencrypted PKCS#8 PEM, owner-only; an existing file is kept."""
    key = ec.generate_private_key(CURVE())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise SigningKeyError(f"{path}: already exists; not overwritten") from None
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot write: {exc.strerror}") from None
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return key


def load_key(path: str | os.PathLike[str]) -> ec.EllipticCurvePrivateKey:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise SigningKeyError(f"{path}: cannot read: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise SigningKeyError(f"{path}: not an unencrypted PEM private key") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, CURVE):
        raise SigningKeyError(f"{path}: not an ECDSA P-384 key (make one with postarc keygen)")
    return key


def public_key_b64(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    """The ``publicKey`` value: base64 of the DER SubjectPublicKeyInfo (WebCrypto's "spki")."""
    public = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode("ascii")


def _size(key: ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey) -> int:
    return (key.curve.key_size + 7) // 8


def sign_p1363(key: ec.EllipticCurvePrivateKey, text: str) -> str:
    """ECDSA-SHA256 over ``text``'s UTF-8 bytes, raw r‖s, base64 (as WebCrypto signs)."""
    r, s = decode_dss_signature(key.sign(text.encode("utf-8"), ec.ECDSA(hashes.SHA256())))
    n = _size(key)
    return base64.b64encode(r.to_bytes(n, "big") + s.to_bytes(n, "big")).decode("ascii")


def verify_p1363(public_key_b64_: str, signature_b64: str, text: str) -> str | None:
    """None if the anonymous signature holds; else why not, in a few words."""
    try:
        public = serialization.load_der_public_key(base64.b64decode(public_key_b64_, validate=True))
    except ValueError:
        return "publicKey is not a base64 DER public key"
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return "publicKey is not an ECDSA key"
    try:
        raw = base64.b64decode(signature_b64, validate=True)
    except ValueError:
        return "signature is not base64"
    n = _size(public)
    if len(raw) != 2 * n:
        return f"signature is {len(raw)} bytes, not the {2 * n} of a raw r‖s signature"
    der = encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))
    return _verify(public, der, text)


def replay_refuses(public_key_b64_: str) -> str | None:
    """Why ReplayWeb.page would not verify an anonymous signature by this (valid) ``publicKey``:
    its verifier imports the key as P-384 only (docs/provenance.md); None if it would."""
    public = serialization.load_der_public_key(base64.b64decode(public_key_b64_, validate=True))
    if isinstance(public, ec.EllipticCurvePublicKey) and isinstance(public.curve, CURVE):
        return None
    curve = public.curve.name if isinstance(public, ec.EllipticCurvePublicKey) else "not an ECDSA key"
    return f"the key is {curve}; ReplayWeb.page verifies P-384 (secp384r1) keys only and will not show it verified"


def _verify(public: ec.EllipticCurvePublicKey, der: bytes, text: str) -> str | None:
    try:
        public.verify(der, text.encode("utf-8"), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return "signature does not match the hash and the public key"
    return None


def load_pem_chain(pem: str) -> list[x509.Certificate]:
    """Certificates of a PEM chain, leaf first; ValueError if there are none or one is bad."""
    certs = x509.load_pem_x509_certificates(pem.encode("ascii"))
    if not certs:
        raise ValueError("no certificate")
    return certs


def verify_domain(signed: dict, trust: list[x509.Certificate] | None) -> list[str]:
    """Problems of an authsign (domain-certificate) signature: signature, domain, chain."""
    try:
        chain = load_pem_chain(signed.get("domainCert", ""))
    except ValueError:
        return ["signedData: domainCert is not a PEM certificate chain"]
    leaf = chain[0]
    public = leaf.public_key()
    if not isinstance(public, ec.EllipticCurvePublicKey):
        return ["signedData: domainCert's key is not an ECDSA key"]
    try:
        der = base64.b64decode(signed.get("signature", ""), validate=True)
    except ValueError:
        return ["signedData: signature is not base64"]
    problems = []
    why = _verify(public, der, signed.get("hash", "")) if der else "signature is empty"
    if why:
        problems.append(f"signedData: bad signature: {why}")
    names = [a.value for a in leaf.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)]
    if signed.get("domain") not in names:
        problems.append(f"signedData: domain {signed.get('domain')!r} is not the certificate's ({', '.join(names)})")
    if trust is not None:
        why = chain_problem(chain, trust)
        if why:
            problems.append(f"signedData: domain certificate not trusted: {why}")
    return problems


def chain_problem(chain: list[x509.Certificate], trust: list[x509.Certificate]) -> str | None:
    """None if each certificate is signed by the next and the last by (or is) a trusted one."""
    for cert, issuer in zip(chain, chain[1:] + [None]):
        if cert in trust:
            return None
        issuers = [issuer] if issuer is not None else [t for t in trust if t.subject == cert.issuer]
        for candidate in issuers:
            try:
                cert.verify_directly_issued_by(candidate)
            except (ValueError, TypeError, InvalidSignature):
                continue
            if candidate in trust:
                return None
            break
        else:
            return f"{cert.subject.rfc4514_string()} is not issued by a trusted certificate"
    return "the chain ends without a trusted certificate"
