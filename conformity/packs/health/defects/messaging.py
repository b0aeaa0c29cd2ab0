"""Mutations of secure messaging and directory use: MESSAGING, DIRECTORY, PATIENTID-010/012."""

from __future__ import annotations

import copy
import hashlib

from conformity.checks.trace import Exchange
from conformity.defects.edit import TraceEdit, edit_xdm, request_json, set_xdm_files, xdm_files
from conformity.packs.health.defects.common import mutation

SEND, SEARCHES = "messaging.send", "directory.searches"
W2 = ("2027-W2",)


def sent(t: TraceEdit, step: str = "with_document") -> Exchange:
    return t.in_step(step, "mss", method="POST")[-1]


@mutation("xdm-hash-wrong", scenario=SEND, breaks=["MESSAGING-004"], where="Slot[@name='hash']")
def xdm_hash_wrong(t: TraceEdit) -> int:
    """METADATA.XML records a hash that is not the document's."""
    e = sent(t)
    edit_xdm(e, lambda data: data.replace(b'<rim:Slot name="hash"><rim:ValueList><rim:Value>',
                                          b'<rim:Slot name="hash"><rim:ValueList><rim:Value>00'))
    return e.seq


@mutation("sender-of-colleague", scenario=SEND, breaks=["MESSAGING-001"], where="request.body.from")
def sender_of_colleague(t: TraceEdit) -> int:
    """The message is sent from a colleague's address."""
    e = sent(t)
    request_json(e)["from"] = t.fixtures["practitioners"][1]["mss_address"]
    return e.seq


@mutation("sent-after-503", scenario=SEND, breaks=["MESSAGING-008"], where="output.status")
def sent_after_503(t: TraceEdit) -> int:
    """A message the service refused with 503 is reported sent."""
    t.set_output("service_down", {"status": "sent", "message_id": "<x@y>"})
    return t.in_step("service_down", "mss")[-1].seq  # the finding quotes the refusal


@mutation("generic-user-agent", scenario=SEND, breaks=["PATIENTID-012"], where="user-agent")
def generic_user_agent(t: TraceEdit) -> int:
    """Look-ups carry the HTTP library's User-Agent, not the software's name, version and registration id."""
    for e in t.exchanges("insi"):
        e.raw["request"]["headers"]["user-agent"] = "python-httpx/0.28"
    return t.exchanges("insi")[0].seq


@mutation("user-agent-build-version", scenario=SEND, breaks=["PATIENTID-012"], where="user-agent")
def user_agent_build_version(t: TraceEdit) -> int:
    """Look-ups announce a build number after the declared version (``Name/1.0.0.4711``): another version than the
    one submitted for the label, which a substring search took for it."""
    for e in t.exchanges("insi"):
        headers = e.raw["request"]["headers"]
        name_version, _, rest = headers["user-agent"].partition(" ")
        headers["user-agent"] = f"{name_version}.4711 {rest}"
    return t.exchanges("insi")[0].seq


@mutation("user-agent-without-registration-id", scenario=SEND, breaks=["PATIENTID-012"], where="user-agent")
def user_agent_without_registration_id(t: TraceEdit) -> int:
    """Look-ups announce the software's name and version but not its registration id (the comment after them is
    left out)."""
    for e in t.exchanges("insi"):
        headers = e.raw["request"]["headers"]
        headers["user-agent"] = headers["user-agent"].partition(" ")[0]
    return t.exchanges("insi")[0].seq


@mutation("recipient-inactive", scenario=SEND, breaks=["MESSAGING-002"], where="request.body.to")
def recipient_inactive(t: TraceEdit) -> int:
    """The message goes to an address the directory lists as inactive (a retired colleague)."""
    retired = next(p for p in t.fixtures["practitioners"] if not p.get("active", True))
    e = sent(t)
    request_json(e)["to"] = [retired["mss_address"]]
    return e.seq


@mutation("unknown-recipient-not-named", scenario=SEND, breaks=["MESSAGING-003"],
          where="output.refused_recipients")
def unknown_recipient_not_named(t: TraceEdit) -> int:
    """A message to an unlisted address is refused without saying which address."""
    return t.set_output("unknown_recipient", {"status": "refused", "error": "invalid recipient"})


@mutation("typed-address-not-checked", scenario=SEND, breaks=["DIRECTORY-004"], where="directory requests")
def typed_address_not_checked(t: TraceEdit) -> int:
    """A typed address is refused from a local address book, without asking the directory."""
    address = t.step("unknown_recipient").data["input"]["recipients"][0]
    asked = {e.seq for e in t.exchanges("directory") if address in str(e.query)}
    t.drop(lambda e: e["seq"] not in asked)
    return t.step("unknown_recipient").seq


@mutation("ins-in-message-text", scenario=SEND, breaks=["PATIENTID-010"], where="request.body.body")
def ins_in_message_text(t: TraceEdit) -> float:
    """For a recovered identity (document not checked) the software cannot attach a document, so it sends the
    message without it, writing the patient's INS in the text."""
    identity = t.in_step("lookup_unconfirmed", "insi", path="/lookup")[-1].response_json["identity"]
    note = t.step("unconfirmed_document")
    raw = copy.deepcopy(sent(t).raw) | {"seq": note.seq - 0.5}
    raw["request"]["body"]["json"] |= {"attachments": [], "body": f"Patient INS {identity['ins']}: see my letter."}
    seq = t.insert(raw)
    note.raw["data"]["output"] = {"status": "sent", "message_id": "<m@refapp>"}
    return seq


@mutation("ins-under-local-authority", scenario=SEND, breaks=["PATIENTID-010", "MESSAGING-005"],
          where="METADATA.XML")
def ins_under_local_authority(t: TraceEdit) -> float:
    """For a recovered identity (document not checked) the software sends the document anyway, the patient's INS
    in METADATA.XML and the CDA under a local assigning authority instead of the INS OID (and not in the
    attachment's patient member): the INS still travels."""
    identity = t.in_step("lookup_unconfirmed", "insi", path="/lookup")[-1].response_json["identity"]
    note = t.step("unconfirmed_document")
    raw = copy.deepcopy(sent(t).raw) | {"seq": note.seq - 0.5}
    att = raw["request"]["body"]["json"]["attachments"][0]
    qualified = att.pop("patient")
    files = xdm_files(att)
    renamed = {name: data.replace(str(qualified["ins"]).encode(), identity["ins"].encode())
               .replace(str(qualified["oid"]).encode(), b"1.2.250.1.999.77.2") for name, data in files.items()}
    meta = next(n for n in renamed if n.endswith("METADATA.XML"))
    for name, data in files.items():  # METADATA.XML's hash and size of each document: the edited one's (else MESSAGING-004)
        if name != meta:
            for digest in (hashlib.sha1, hashlib.sha256):
                renamed[meta] = renamed[meta].replace(digest(data).hexdigest().encode(),
                                                      digest(renamed[name]).hexdigest().encode())
            renamed[meta] = renamed[meta].replace(f">{len(data)}<".encode(), f">{len(renamed[name])}<".encode())
    set_xdm_files(att, renamed)
    seq = t.insert(raw)
    note.raw["data"]["output"] = {"status": "sent", "message_id": "<m@refapp>"}
    return seq


@mutation("attachment-patient-id-local", scenario=SEND, breaks=["MESSAGING-005"])
def attachment_patient_id_local(t: TraceEdit) -> int:
    """A qualified patient's document is sent with the local patient id in METADATA.XML instead of the INS."""
    e = sent(t)
    edit_xdm(e, lambda data: data.replace(b"^^^&amp;1.2.250.1.213.1.4.", b"^^^&amp;1.2.250.1.999.1.").replace(
        b"^^^&1.2.250.1.213.1.4.", b"^^^&1.2.250.1.999.1."))
    return e.seq


# ---------------------------------------------------------------------------------------------
# the directory


@mutation("profession-rewritten", scenario=SEARCHES, breaks=["DIRECTORY-001"], where="profession")
def profession_rewritten(t: TraceEdit) -> int:
    """The profession shown is the software's own label, not the directory's."""
    for step in ("by_national_id", "by_national_id_again"):
        t.output(step)["results"][0]["profession"] = "Médecin généraliste"
    return t.in_step("by_national_id", "directory")[-1].seq


@mutation("name-not-normalised", scenario=SEARCHES, breaks=["DIRECTORY-002"], where="request.query.name")
def name_not_normalised(t: TraceEdit) -> int:
    """A name search sends the name as typed, in lower case."""
    e = t.in_step("by_name", "directory")[-1]
    e.raw["request"]["query"]["name"] = [e.raw["request"]["query"]["name"][0].lower()]
    return e.seq


@mutation("organisation-name-shortened", scenario=SEARCHES, breaks=["DIRECTORY-003"], where="name")
def organisation_name_shortened(t: TraceEdit) -> int:
    """The organisation is shown by an abbreviation, not its name."""
    t.output("organisation")["results"][0]["name"] = "CH"
    return t.in_step("organisation", "directory")[-1].seq  # the finding quotes the directory's answer


@mutation("retired-shown-active", scenario=SEARCHES, breaks=["DIRECTORY-005"], where="active")
def retired_shown_active(t: TraceEdit) -> int:
    """Inactive practitioners are shown as active."""
    for r in t.output("by_name")["results"]:
        r["active"] = True
    return t.in_step("by_name", "directory")[-1].seq


@mutation("stale-cache", scenario=SEARCHES, breaks=["DIRECTORY-006"], where="cache-control")
def stale_cache(t: TraceEdit) -> int:
    """An answer cached with max-age=0 is used again without revalidation."""
    gone = {e.seq for e in t.in_step("by_national_id_again", "directory")}
    t.drop(lambda e: e["seq"] not in gone)
    return t.in_step("by_national_id", "directory")[-1].seq  # the answer reused past its max-age


@mutation("revalidated-with-other-etag", scenario=SEARCHES, breaks=["DIRECTORY-006"], where="if-none-match")
def revalidated_with_other_etag(t: TraceEdit) -> int:
    """A stale answer is revalidated with the ETag the cache holds for another search (a cache keyed by path, not by
    query)."""
    again = t.in_step("by_national_id_again", "directory", method="GET")[-1]
    again.raw["request"]["headers"]["if-none-match"] = '"0123456789abcdef"'
    return again.seq
