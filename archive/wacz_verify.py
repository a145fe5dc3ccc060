"""``postarc verify --wacz``: is a WACZ whole, and who signed it when?

The steps of the WACZ signing recommendation's "Verification", each finding one line:
every member's SHA-256 against ``datapackage.json``, that file's against the digest, the
``signedData`` (anonymous or authsign's domain form) and, where there is one, the RFC 3161
token over the signature: its imprint, its TSA's chain against ``--trust``, and its time
within 10 minutes of ``created``.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from dateutil.parser import isoparse

from archive.signing import ANONYMOUS_KEYS, DOMAIN_KEYS, replay_refuses, verify_domain, verify_p1363
from archive.timestamp import verify_token
from archive.wacz import DIGEST_NAME

STAMP_WINDOW = datetime.timedelta(minutes=10)  # the recommendation's step 7


@dataclass
class WaczReport:
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    files: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _sha256(z: zipfile.ZipFile, name: str) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with z.open(name) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            size += len(chunk)
    return "sha256:" + h.hexdigest(), size


def _check_members(z: zipfile.ZipFile, datapackage: dict, report: WaczReport) -> None:
    listed = set()
    for resource in datapackage.get("resources", []):
        path = resource.get("path", "")
        listed.add(path)
        try:
            digest, size = _sha256(z, path)
        except KeyError:
            report.problems.append(f"{path}: missing (datapackage.json lists it)")
            continue
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            report.problems.append(f"{path}: damaged in the zip ({exc})")
            continue
        report.files += 1
        if digest != resource.get("hash"):
            report.problems.append(f"{path}: changed (its hash is not the one datapackage.json lists)")
        elif size != resource.get("bytes", size):
            report.problems.append(f"{path}: {size} bytes, datapackage.json lists {resource.get('bytes')}")
    for name in z.namelist():
        if name not in listed and name not in ("datapackage.json", DIGEST_NAME) and not name.endswith("/"):
            report.problems.append(f"{name}: in the zip but not listed in datapackage.json")


def _check_timestamp(response: str, cert_pem: str, signed: dict, trust: list[x509.Certificate] | None,
                     report: WaczReport) -> None:
    time, problems = verify_token(response, cert_pem, signed.get("signature", "").encode("ascii"), trust)
    report.problems += problems
    if time is None:
        return
    try:
        created = isoparse(signed.get("created", ""))
    except ValueError:
        report.problems.append(f"signedData: created {signed.get('created')!r} is not an ISO 8601 date")
        return
    if created.tzinfo is None:
        created = created.replace(tzinfo=datetime.timezone.utc)
    if abs(time - created) > STAMP_WINDOW:
        report.problems.append(f"timestamp: {time:%Y-%m-%dT%H:%M:%SZ} is more than 10 minutes from created "
                               f"{signed.get('created')}")
    elif trust is None:
        report.notes.append(f"timestamp: {time:%Y-%m-%dT%H:%M:%SZ}, as the TSA claims: its chain is not checked "
                            "without --trust")
    else:
        report.notes.append(f"timestamp: {time:%Y-%m-%dT%H:%M:%SZ}, by a trusted TSA")


def _check_signature(digest: dict, datapackage: dict, trust: list[x509.Certificate] | None,
                     report: WaczReport) -> None:
    signed = digest.get("signedData")
    if not isinstance(signed, dict):
        report.notes.append("not signed (datapackage-digest.json has no signedData)")
        return
    if signed.get("hash") != digest.get("hash"):
        report.problems.append("signedData: signs another hash than datapackage-digest.json's")
    if signed.get("created") != datapackage.get("created"):
        report.problems.append("signedData: created differs from datapackage.json's")
    if "publicKey" in signed:
        form, allowed = "anonymous", ANONYMOUS_KEYS
        why = verify_p1363(signed.get("publicKey", ""), signed.get("signature", ""), signed.get("hash", ""))
        if why:
            report.problems.append(f"signedData: bad signature: {why}")
        else:
            report.notes.append(f"signature: anonymous, valid, publicKey {signed['publicKey']} "
                                "(check it against the signer's own copy)")
            if refused := replay_refuses(signed["publicKey"]):
                report.notes.append(f"signature: {refused}")
        stamp = digest.get("timeSignature"), digest.get("timestampCert")
    else:
        form, allowed = "domain", DOMAIN_KEYS
        problems = verify_domain(signed, trust)
        report.problems += problems
        if not problems:
            report.notes.append(f"signature: by {signed.get('domain')}, valid"
                                + ("" if trust is not None else ", its certificate chain not checked without --trust"))
        stamp = signed.get("timeSignature"), signed.get("timestampCert")
    extra = sorted(set(signed) - allowed)
    if extra:
        report.problems.append(f"signedData: properties the {form} form does not allow: {', '.join(extra)}")
    if stamp[0] and stamp[1]:
        _check_timestamp(stamp[0], stamp[1], signed, trust, report)
    elif form == "domain":
        report.problems.append("signedData: no timeSignature and timestampCert (the domain form requires them)")
    else:
        report.notes.append("no timestamp: the creation time is the signer's claim")


def verify_wacz(path: str | os.PathLike[str], trust: list[x509.Certificate] | None = None) -> WaczReport:
    """Check a WACZ; ``trust``: the CA certificates a TSA or domain chain must lead to."""
    report = WaczReport()
    try:
        z = zipfile.ZipFile(Path(path))
    except (OSError, zipfile.BadZipFile) as exc:
        report.problems.append(f"{path}: not a readable zip ({exc})")
        return report
    with z:
        try:
            raw = z.read("datapackage.json")
            datapackage = json.loads(raw)
        except KeyError:
            report.problems.append("datapackage.json: missing")
            return report
        except (ValueError, zipfile.BadZipFile) as exc:
            report.problems.append(f"datapackage.json: unreadable ({exc})")
            return report
        _check_members(z, datapackage, report)
        try:
            digest = json.loads(z.read(DIGEST_NAME))
        except KeyError:
            report.notes.append(f"not signed (no {DIGEST_NAME})")
            return report
        except (ValueError, zipfile.BadZipFile) as exc:
            report.problems.append(f"{DIGEST_NAME}: unreadable ({exc})")
            return report
    if digest.get("hash") != "sha256:" + hashlib.sha256(raw).hexdigest():
        report.problems.append(f"datapackage.json: changed (its hash is not the one {DIGEST_NAME} holds)")
    _check_signature(digest, datapackage, trust, report)
    return report
