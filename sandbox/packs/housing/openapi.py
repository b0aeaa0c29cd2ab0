"""The housing pack's part of the sandbox's OpenAPI description (merged by :mod:`sandbox.openapi`)."""

from __future__ import annotations

from typing import Any

from sandbox.openapi import (
    BODY,
    BOOL,
    FAULTS,
    INT,
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

NUMBER = {"type": "number"}
FINDING = obj(
    "type thematique message objets_concerne",
    type={"enum": ["erreur_logiciel", "erreur_saisie", "warning_logiciel", "warning_saisie"]},
    thematique=STR,
    message=STR,
    objets_concerne=array(STR),
)
BUILDING = obj(
    "rnb_id status addresses parcels",
    rnb_id=STR,
    status=STR,
    addresses=array(obj("cle_interop label", cle_interop=STR, label=STR)),
    parcels=array(STR),
)

SCHEMAS: dict[str, Any] = {
    "ProfessionalClaims": obj(
        "sub",
        open_=True,
        sub=STR,
        uid=STR,
        given_name=STR,
        usual_name=STR,
        email=STR,
        siret={"type": "string", "pattern": "^[0-9]{14}$"},
    ),
    "FeatureCollection": obj(
        "type query features",
        type={"const": "FeatureCollection"},
        query=STR,
        features=array(
            obj(
                "type geometry properties",
                type={"const": "Feature"},
                geometry=obj("type coordinates", type={"const": "Point"}, coordinates=array(NUMBER)),
                properties=obj(
                    "label score type id citycode",
                    label=STR,
                    score=NUMBER,
                    type=STR,
                    citycode=STR,
                    id={"type": "string", "description": "The BAN interoperability key (cle_interop)."},
                ),
            )
        ),
    ),
    "Building": BUILDING,
    "BuildingSearch": obj(
        "status", status={"enum": ["ok", "no_result", "score_too_low"]}, buildings=array(BUILDING), score=NUMBER
    ),
    "DpeTest": obj(
        "mode receivable controle_coherence", mode={"const": "test"}, receivable=BOOL, controle_coherence=array(FINDING)
    ),
    "DpeFiled": obj(
        "numero_dpe warnings duplicate",
        numero_dpe={"type": "string", "pattern": "^[0-9]{4}[A-Z][0-9]{7}[A-Z]$"},
        warnings=array(FINDING),
        duplicate={"type": "boolean", "description": "true (200): this DPE was filed already, under this number; "
                                                     "nothing new is filed"},
    ),
    "DpeRecord": obj(
        "numero_dpe status filed",
        open_=True,
        numero_dpe=STR,
        status=STR,
        filed=TIME,
        filed_by=STR,
        sha256=STR,
        bytes=INT,
        energy_class=nullable(STR),
        rnb_id=nullable(STR),
        warnings=array(FINDING),
    ),
    "Consent": obj(
        "consent_id household grantee scope transfer_consumption purpose expires status",
        consent_id=STR,
        household=STR,
        grantee=STR,
        scope=array(STR),
        transfer_consumption=BOOL,
        purpose=STR,
        expires=STR,
        status={"enum": ["granted", "revoked"]},
    ),
    "HomeDocuments": obj(
        "home kind consent_id documents", home=STR, kind=STR, consent_id=STR, documents=array({"type": "object"})
    ),
    "Deposit": obj("id sha256 duplicate", id=STR, sha256=STR, duplicate=BOOL),
    "Transfer": obj("transfer_id recipient period", transfer_id=STR, recipient=STR, period=STR,
                    duplicate={"type": "boolean", "description": "production: true (200) when this installation "
                                                                 "transferred every month of this period of this "
                                                                 "home's consumption to this recipient already"}),
}

HOME = "/s/{session_id}/dataspace/homes/{fiscal}"
PROD_HOME = "/prod/dataspace/homes/{fiscal}"
SUCCESS: dict[str, dict[int, Any]] = {
    "GET /s/{session_id}/geocoder/search": {200: ref("FeatureCollection")},
    "GET /s/{session_id}/buildings/buildings/{rnb_id}": {200: ref("Building")},
    "GET /s/{session_id}/buildings/buildings": {200: ref("BuildingSearch")},
    "POST /s/{session_id}/observatory/dpe": {200: {"anyOf": [ref("DpeTest"), ref("DpeFiled")]}, 201: ref("DpeFiled")},
    "GET /s/{session_id}/observatory/dpe/{numero_dpe}": {200: ref("DpeRecord")},
    "POST /prod/observatory/dpe": {200: ref("DpeFiled"), 201: ref("DpeFiled")},
    "POST /s/{session_id}/dataspace/consents": {201: ref("Consent")},
    "GET /s/{session_id}/dataspace/consents/{consent_id}": {200: ref("Consent")},
    "DELETE /s/{session_id}/dataspace/consents/{consent_id}": {200: ref("Consent")},
    f"GET {HOME}/documents": {200: ref("HomeDocuments")},
    f"POST {HOME}/quotes": {200: ref("Deposit"), 201: ref("Deposit")},
    f"POST {HOME}/works": {200: ref("Deposit"), 201: ref("Deposit")},
    f"POST {HOME}/transfers": {201: ref("Transfer")},
    "POST /prod/dataspace/consents": {201: ref("Consent")},
    "GET /prod/dataspace/consents/{consent_id}": {200: ref("Consent")},
    "DELETE /prod/dataspace/consents/{consent_id}": {200: ref("Consent")},
    f"POST {PROD_HOME}/quotes": {200: ref("Deposit"), 201: ref("Deposit")},
    f"POST {PROD_HOME}/works": {200: ref("Deposit"), 201: ref("Deposit")},
    f"POST {PROD_HOME}/transfers": {200: ref("Transfer"), 201: ref("Transfer")},
}

ERRORS: dict[str, list[int]] = {
    "GET /s/{session_id}/geocoder/search": SESSION + [422] + FAULTS,
    "GET /s/{session_id}/buildings/buildings/{rnb_id}": SESSION + [422] + FAULTS,
    "GET /s/{session_id}/buildings/buildings": SESSION + [422] + FAULTS,
    "POST /s/{session_id}/observatory/dpe": SESSION + TOKEN + BODY + FAULTS + [409],
    "GET /s/{session_id}/observatory/dpe/{numero_dpe}": SESSION + TOKEN,
    "POST /prod/observatory/dpe": [405] + TOKEN + BODY + [409],
    "POST /s/{session_id}/dataspace/consents": SESSION + TOKEN + BODY + FAULTS,
    "GET /s/{session_id}/dataspace/consents/{consent_id}": SESSION + TOKEN,
    "DELETE /s/{session_id}/dataspace/consents/{consent_id}": SESSION + TOKEN + [409],
    f"GET {HOME}/documents": SESSION + TOKEN + [422] + FAULTS,
    f"POST {HOME}/quotes": SESSION + TOKEN + BODY + FAULTS + [409],
    f"POST {HOME}/works": SESSION + TOKEN + BODY + FAULTS + [409],
    f"POST {HOME}/transfers": SESSION + TOKEN + BODY + FAULTS,
    "POST /prod/dataspace/consents": [405] + TOKEN + BODY,
    "GET /prod/dataspace/consents/{consent_id}": [405] + TOKEN,
    "DELETE /prod/dataspace/consents/{consent_id}": [405] + TOKEN + [409],
    f"POST {PROD_HOME}/quotes": [405] + TOKEN + BODY + [409],
    f"POST {PROD_HOME}/works": [405] + TOKEN + BODY + [409],
    f"POST {PROD_HOME}/transfers": [405] + TOKEN + BODY,
}

DOCUMENT = PackDocument(
    schemas=SCHEMAS,
    success=SUCCESS,
    errors=ERRORS,
    claims="ProfessionalClaims",
    open_services=("geocoder", "buildings"),
    operation_ids={"POST /s/{session_id}/observatory/dpe": "observatory_dpe"},
    examples=load_examples(__package__),
)
