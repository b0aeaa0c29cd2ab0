"""The health pack's part of the sandbox's OpenAPI description: its schemas, and what each of its operations
answers (merged by :mod:`sandbox.openapi`)."""

from __future__ import annotations

from typing import Any

from sandbox.openapi import (
    BODY,
    BOOL,
    FAULTS,
    INT,
    MAP_STR,
    SESSION,
    STR,
    TIME,
    TOKEN,
    PackDocument,
    array,
    load_examples,
    nullable,
    obj,
    ref,
)

SCHEMAS: dict[str, Any] = {
    "Traits": obj("birth_name first_names birth_date sex birth_place_code", birth_name=STR, first_names=STR,
                  birth_date=STR, sex={"enum": ["M", "F", "U"]}, birth_place_code=STR),
    "Fixtures": obj(
        "seed patients practitioners organisations sites", open_=True, seed=INT,
        patients=array(obj("ref scenario traits", open_=True, ref=STR, scenario=STR, traits={"type": "object"},
                           ins=STR, oid=STR, registered_traits={"type": "object"})),
        practitioners=array(obj("national_id rpps family_name given_name profession_code profession organisation "
                                "mss_address active", open_=True, national_id=STR, rpps=STR, family_name=STR,
                                given_name=STR, profession_code=STR, profession=STR, specialty_code=nullable(STR),
                                specialty=nullable(STR), organisation=STR, mss_address=STR, active=BOOL)),
        organisations=array(obj("finess name mss_address active", open_=True, finess=STR, name=STR, type_code=STR,
                                type=STR, mss_address=STR, active=BOOL)),
        sites=array(obj("site_id size", open_=True, site_id=STR, size=STR, name=STR))),
    "PractitionerClaims": obj("sub", open_=True, sub=STR, given_name=STR, family_name=STR, preferred_username=STR,
                              SubjectNameID=STR, SubjectRefPro={"type": "object"}, profession={"type": "object"},
                              specialty={"type": "object"}),
    "LookupAnswer": {
        "oneOf": [
            obj("outcome identity", outcome={"const": "match"},
                identity=obj("ins oid traits", ins=STR, oid=STR, traits=ref("Traits"))),
            obj("outcome", outcome={"const": "no_match"}),
            obj("outcome count", outcome={"const": "multiple"}, count={"type": "integer", "minimum": 2}),
        ],
        "description": "match: one registered identity (INS, the OID of its assigning authority, the traits as "
                       "registered); no_match and multiple never carry an identity (PATIENTID-006/007)."},
    "DocumentEntry": obj(
        "unique_id status hidden metadata software site sha256 submitted replaces replaced_by deleted",
        unique_id=STR, status={"enum": ["approved", "deprecated", "deleted"]}, hidden=BOOL, hidden_at=TIME,
        level=nullable(INT), metadata={"type": "object"}, software=obj("name version registration_id", name=STR,
                                                                       version=STR, registration_id=STR),
        site=obj("id", id=STR), sha256=STR, submitted=TIME, replaces=nullable(STR), replaced_by=nullable(STR),
        deleted=nullable(TIME), document={"type": "string", "description": "The CDA, base64 (reads only)."}),
    "Message": obj("message_id from to received bytes content_sha256 sha256", open_=True, message_id=STR,
                   to=array(STR), cc=array(STR), subject=STR, body=STR, attachments=array({"type": "object"}),
                   received=TIME, bytes=INT, content_sha256=STR, sha256=STR, **{"from": STR}),
    "Address": obj("address type display_name national_id finess active", address=STR,
                   type={"enum": ["organisation", "practitioner"]}, display_name=STR, national_id=nullable(STR),
                   finess=STR, active=BOOL),
}

EXAMPLES_LOOKUP = {
    "match": {"summary": "one registered identity", "value": {"outcome": "match", "identity": {
        "ins": "199027505648460", "oid": "1.2.250.1.213.1.4.10", "traits": {
            "birth_name": "DA SILVA PEREIRA", "first_names": "LOIC", "birth_date": "1999-02-09", "sex": "M",
            "birth_place_code": "75056"}}}},
    "no_match": {"summary": "nobody with these traits", "value": {"outcome": "no_match"}},
    "multiple": {"summary": "several identities share these traits", "value": {"outcome": "multiple", "count": 2}},
}

SUCCESS: dict[str, dict[int, Any]] = {
    "POST /s/{session_id}/insi/lookup": {200: ref("LookupAnswer")},
    "POST /s/{session_id}/dmp/documents": {200: ref("DocumentEntry"), 201: ref("DocumentEntry")},
    "POST /s/{session_id}/dmp/documents/{unique_id}/replace": {200: ref("DocumentEntry"), 201: ref("DocumentEntry")},
    "GET /s/{session_id}/dmp/documents/{unique_id}": {200: ref("DocumentEntry")},
    "DELETE /s/{session_id}/dmp/documents/{unique_id}": {200: ref("DocumentEntry")},
    "POST /s/{session_id}/dmp/documents/{unique_id}/hide": {200: ref("DocumentEntry")},
    "GET /s/{session_id}/dmp/patients/{patient_id}/documents": {200: obj(
        "patient_id documents", patient_id=STR, documents=array(ref("DocumentEntry")))},
    "GET /s/{session_id}/dmp/value-sets": {200: obj(
        "value_sets", open_=True, value_sets={"type": "object", "additionalProperties": MAP_STR})},
    "GET /s/{session_id}/dmp/schematron": {200: ("application/xml", STR)},
    "POST /s/{session_id}/mss/messages": {201: obj("message_id", message_id=STR),
                                          200: obj("message_id duplicate", message_id=STR, duplicate={"const": True})},
    "GET /s/{session_id}/mss/mailboxes/{address}/messages": {200: array(ref("Message"))},
    "GET /s/{session_id}/directory/practitioners": {200: array(SCHEMAS["Fixtures"]["properties"]["practitioners"][
        "items"]), 304: None},
    "GET /s/{session_id}/directory/organisations": {200: array(SCHEMAS["Fixtures"]["properties"]["organisations"][
        "items"]), 304: None},
    "GET /s/{session_id}/directory/addresses": {200: array(ref("Address")), 304: None},
    "POST /prod/dmp/documents": {200: ref("DocumentEntry"), 201: ref("DocumentEntry")},
    "POST /prod/mss/messages": {201: obj("message_id", message_id=STR),
                                200: obj("message_id duplicate", message_id=STR, duplicate={"const": True})},
}

ERRORS: dict[str, list[int]] = {
    "POST /s/{session_id}/insi/lookup": SESSION + TOKEN + BODY + FAULTS,
    "POST /s/{session_id}/dmp/documents": SESSION + TOKEN + BODY + FAULTS + [409],
    "POST /s/{session_id}/dmp/documents/{unique_id}/replace": SESSION + TOKEN + BODY + FAULTS + [409],
    "GET /s/{session_id}/dmp/documents/{unique_id}": SESSION + TOKEN,
    "DELETE /s/{session_id}/dmp/documents/{unique_id}": SESSION + TOKEN,
    "POST /s/{session_id}/dmp/documents/{unique_id}/hide": SESSION + TOKEN,
    "GET /s/{session_id}/dmp/patients/{patient_id}/documents": SESSION + TOKEN + [422],
    "GET /s/{session_id}/dmp/value-sets": SESSION + TOKEN,
    "GET /s/{session_id}/dmp/schematron": SESSION + TOKEN,
    "POST /s/{session_id}/mss/messages": SESSION + TOKEN + BODY + FAULTS + [409],
    "GET /s/{session_id}/mss/mailboxes/{address}/messages": SESSION + TOKEN,
    "GET /s/{session_id}/directory/practitioners": SESSION + TOKEN + FAULTS + [422],
    "GET /s/{session_id}/directory/organisations": SESSION + TOKEN + FAULTS + [422],
    "GET /s/{session_id}/directory/addresses": SESSION + TOKEN + FAULTS + [422],
    "POST /prod/dmp/documents": [405] + TOKEN + BODY + [409],
    "POST /prod/mss/messages": [405] + TOKEN + BODY + [409],
}


def _security(method: str, path: str) -> list[dict[str, list[str]]] | None:
    """The shared record's reads and hide also take the session token (the harness playing the patient)."""
    if "/dmp/" in path and (method == "GET" or path.endswith("/hide")):
        return [{"accessToken": []}, {"sessionToken": []}]
    return None


DOCUMENT = PackDocument(
    schemas=SCHEMAS, success=SUCCESS, errors=ERRORS,
    operation_ids={"POST /s/{session_id}/insi/lookup": "insi_lookup", "POST /s/{session_id}/dmp/documents": "dmp_submit",
                   "POST /s/{session_id}/mss/messages": "mss_send",
                   # SECURITY-006 names these: the GETs whose interface defines personal data as search parameters
                   "GET /s/{session_id}/directory/practitioners": "directory_practitioners",
                   "GET /s/{session_id}/directory/organisations": "directory_organisations",
                   "GET /s/{session_id}/directory/addresses": "directory_addresses",
                   "GET /s/{session_id}/dmp/patients/{patient_id}/documents": "dmp_patient_documents"},
    examples=load_examples(__package__, {"POST /s/{session_id}/insi/lookup": {200: EXAMPLES_LOOKUP}}),
    headers={"POST /s/{session_id}/dmp/documents": {201: {"Location": {"schema": STR, "description": "The new "
                                                                         "document's URL"}}},
             "POST /s/{session_id}/dmp/documents/{unique_id}/replace": {201: {"Location": {
                 "schema": STR, "description": "The new document's URL"}}},
             "POST /prod/dmp/documents": {201: {"Location": {"schema": STR, "description": "The new document's URL"}}},
             **{f"GET /s/{{session_id}}/directory/{name}": {200: {"ETag": {"schema": STR}, "Cache-Control": {"schema": STR}},
                                                            304: {"ETag": {"schema": STR}, "Cache-Control": {"schema": STR}}}
                for name in ("practitioners", "organisations", "addresses")}},
    security=_security, claims="PractitionerClaims",
)
