"""Action message.send: secure messages addressed from the directory, patient documents in IHE XDM packages.

Before any request to the messaging service, RefApp checks the sender (the practitioner's or the
site's own address) and every recipient against the directory and refuses the whole message when
one is unknown or inactive (MESSAGING-001/002/003, DIRECTORY-004/005). A patient document travels
as an IHE XDM ZIP (``IHE_XDM/SUBSET01/METADATA.XML`` + the CDA) whose metadata carry the patient's
INS, only for a qualified identity (MESSAGING-004/005), and never a document the patient has hidden.
"""

from __future__ import annotations

import base64
import hashlib
import io
import re
import uuid
import zipfile
from typing import Any

import httpx
from lxml import etree

from refapp import cda, defects
from refapp.actions import action
from refapp.app import Application
from refapp.directory import DirectoryError, directory
from refapp.documents import Refused, patient_record, problem, produce, require_qualified, submission

RIM = "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"
LCM = "urn:oasis:names:tc:ebxml-regrep:xsd:lcm:3.0"
DOCUMENT_ENTRY = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
ENTRY_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
ENTRY_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
SET_PATIENT_ID = "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446"
SUBSET = "IHE_XDM/SUBSET01/"

UNCHECKED_RECIPIENTS = defects.register("message-to-unlisted-address", "sends to typed recipient addresses "
                                                                       "without checking them in the directory")
MSS_NO_VERIFY = defects.register("messaging-skips-tls-verify", "the messaging connector (written apart from the rest) "
                                                               "does not verify the messaging service's certificate")


def mss_url(app: Application, path: str) -> str:
    return app.ctx.endpoints["mss"].rstrip("/") + path


def check_sender(app: Application, sender: str) -> None:
    """The sender must be an active directory address of the logged-in practitioner or of the care site."""
    entry = directory(app).address(sender)
    app.access_token()
    assert app.practitioner is not None
    site_id = str(app.ctx.fixtures.get("site", {}).get("site_id", ""))
    if entry is None or not entry.get("active", True) or (
            entry.get("national_id") != app.practitioner.national_id
            and not (entry.get("type") == "organisation" and entry.get("finess") == site_id)):
        raise Refused("refused", f"sender {sender} is not a directory address of the practitioner or the site")


def unusable_recipients(app: Application, recipients: list[str]) -> list[str]:
    """The recipients the directory does not list as active addresses."""
    if defects.active(UNCHECKED_RECIPIENTS):
        return []
    bad = []
    for address in recipients:
        entry = directory(app).address(address)
        if entry is None or not entry.get("active", True):
            bad.append(address)
    return bad


# ---------------------------------------------------------------------------------------------
# IHE XDM


def _slot(parent: etree._Element, name: str, *values: str) -> None:
    slot = etree.SubElement(parent, f"{{{RIM}}}Slot", name=name)
    value_list = etree.SubElement(slot, f"{{{RIM}}}ValueList")
    for v in values:
        etree.SubElement(value_list, f"{{{RIM}}}Value").text = v


def _external_id(parent: etree._Element, scheme: str, value: str, name: str, owner: str) -> None:
    ext = etree.SubElement(parent, f"{{{RIM}}}ExternalIdentifier", id=f"urn:uuid:{uuid.uuid4()}",
                           registryObject=owner, identificationScheme=scheme, value=value)
    etree.SubElement(etree.SubElement(ext, f"{{{RIM}}}Name"), f"{{{RIM}}}LocalizedString", value=name)


def metadata_xml(document: bytes, meta: dict[str, Any], filename: str) -> bytes:
    """METADATA.XML: a SubmitObjectsRequest with the document entry (hash, size, URI, patient) and its set."""
    root = etree.Element(f"{{{LCM}}}SubmitObjectsRequest", nsmap={"lcm": LCM, "rim": RIM})
    objects = etree.SubElement(root, f"{{{RIM}}}RegistryObjectList")
    entry = etree.SubElement(objects, f"{{{RIM}}}ExtrinsicObject", id="Document01", mimeType="text/xml",
                             objectType=DOCUMENT_ENTRY)
    _slot(entry, "creationTime", re.sub(r"[^0-9]", "", meta["creation_time"])[:14])
    _slot(entry, "hash", hashlib.sha1(document).hexdigest())
    _slot(entry, "size", str(len(document)))
    _slot(entry, "URI", filename)
    _slot(entry, "languageCode", "fr-FR")
    _slot(entry, "sourcePatientId", meta["patient_id"])
    _external_id(entry, ENTRY_PATIENT_ID, meta["patient_id"], "XDSDocumentEntry.patientId", "Document01")
    _external_id(entry, ENTRY_UNIQUE_ID, meta["unique_id"], "XDSDocumentEntry.uniqueId", "Document01")
    package = etree.SubElement(objects, f"{{{RIM}}}RegistryPackage", id="SubmissionSet01")
    _external_id(package, SET_PATIENT_ID, meta["patient_id"], "XDSSubmissionSet.patientId", "SubmissionSet01")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def xdm_zip(document: bytes, meta: dict[str, Any]) -> bytes:
    """The IHE XDM ZIP package of one CDA document."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("README.TXT", "IHE XDM package produced by RefApp.\r\n")
        z.writestr("INDEX.HTM", "<html><body><a href=\"IHE_XDM/SUBSET01/DOC0001.XML\">DOC0001.XML</a></body></html>")
        z.writestr(SUBSET + "METADATA.XML", metadata_xml(document, meta, "DOC0001.XML"))
        z.writestr(SUBSET + "DOC0001.XML", document)
    return buffer.getvalue()


def parse_patient_id(patient_id: str) -> dict[str, str]:
    m = re.fullmatch(r"([0-9A-B]{15})\^\^\^&([0-9.]+)&ISO\^NH", patient_id)
    return {"ins": m[1], "oid": m[2]} if m else {}


def produced_attachment(app: Application, spec: dict[str, Any]) -> dict[str, Any]:
    """A document produced for the message (qualified identities only), packaged as XDM."""
    record = patient_record(app, spec["patient"])
    require_qualified(record)
    if spec["document_type"] not in cda.TYPES:
        raise Refused("refused", f"document type {spec['document_type']} is not one RefApp produces")
    body = submission(app, produce(app, record, spec))
    document = base64.b64decode(body["document"])
    return attachment(document, body["metadata"])


def existing_attachment(app: Application, document_id: str) -> dict[str, Any]:
    """A document of the shared record, unless the patient has hidden it (DOCSHARE-031, ETHICS-002)."""
    try:
        with app.ctx.http() as http:
            r = http.get(app.ctx.endpoints["dmp"].rstrip("/") + f"/documents/{document_id}", headers=app.auth_headers())
    except httpx.HTTPError as exc:
        raise Refused("error", f"shared record unreachable: {type(exc).__name__}") from exc
    if r.status_code != 200:
        raise Refused("refused", f"document {document_id} cannot be attached: {problem(r)}")
    entry = r.json()
    if entry.get("hidden"):
        raise Refused("refused", f"document {document_id} is hidden by the patient: it cannot be forwarded")
    return attachment(base64.b64decode(entry["document"]), entry["metadata"])


def attachment(document: bytes, meta: dict[str, Any]) -> dict[str, Any]:
    return {"filename": "IHE_XDM.ZIP", "content_type": "application/zip",
            "content": base64.b64encode(xdm_zip(document, meta)).decode("ascii"),
            "patient": parse_patient_id(meta["patient_id"])}


# ---------------------------------------------------------------------------------------------
# the action


def send(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    check_sender(app, data["sender"])
    bad = unusable_recipients(app, data["recipients"])
    if bad:
        return {"status": "refused", "refused_recipients": bad,
                "error": "not active addresses of the directory: " + ", ".join(bad)}
    attachments = []
    spec = data.get("attachment")
    if spec is not None:
        attachments.append(existing_attachment(app, spec["document_id"]) if "document_id" in spec
                           else produced_attachment(app, spec))
    message = {"from": data["sender"], "to": data["recipients"], "subject": data["subject"], "body": data["body"],
               "attachments": attachments, "message_id": f"<{uuid.uuid4().hex}@refapp.test>"}
    try:
        with app.ctx.http(verify=False if defects.active(MSS_NO_VERIFY) else None) as http:
            r = http.post(mss_url(app, "/messages"), json=message, headers=app.auth_headers())
    except httpx.HTTPError as exc:
        return {"status": "error", "error": f"messaging service unreachable: {type(exc).__name__}"}
    if r.status_code in (200, 201):
        return {"status": "sent", "message_id": r.json().get("message_id", message["message_id"])}
    out: dict[str, Any] = {"status": "refused" if 400 <= r.status_code < 500 else "error", "error": problem(r)[:500]}
    try:
        named = r.json().get("recipients")
    except ValueError:
        named = None
    out["refused_recipients"] = list(named) if isinstance(named, list) else list(data["recipients"])
    return out


@action("message.send")
def message_send(app: Application, data: dict[str, Any]) -> dict[str, Any]:
    try:
        return send(app, data)
    except Refused as exc:
        return {"status": exc.status, "error": exc.message}
    except DirectoryError as exc:
        return {"status": "error", "error": str(exc)[:500]}
