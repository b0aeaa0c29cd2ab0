"""Trace mutations: the DPE exchange (DPE)."""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from conformity.checks.trace import Exchange, Note
from conformity.defects.edit import TraceEdit
from conformity.packs.housing.defects.common import W4, copied, edit_dpe, mutation, refused, remove, set_text
from conformity.packs.housing.dpe import finding
from conformity.packs.housing.scenarios.dpe import FILE, ON_BOUNDS
from conformity.xmlsafe import parse_xml

SCENARIO = FILE.id
CATEGORY = "DIAGNOSTICIAN"
DIAG = "administratif/diagnostiqueur/"


def uploads(t: TraceEdit, step: str) -> list[Exchange]:
    return t.in_step(step, "observatory", method="POST", path="/dpe")


def edit_filed(t: TraceEdit, change: Callable[[etree._Element], None]) -> float:
    """Every DPE the software sent in the filing step (tested and filed) edited by ``change``; the first one's seq."""
    sent = uploads(t, "complete")
    for e in sent:
        edit_dpe(e, change)
    return sent[0].seq


@mutation("dpe-out-of-schema", scenario=SCENARIO, breaks=["DPE-001"], category=CATEGORY, where="request.body")
def dpe_out_of_schema(t: TraceEdit) -> float:
    """The software writes an element the model does not know (both the tested and the filed document)."""

    def change(root: etree._Element) -> None:
        envelope = root.find("logement/enveloppe")
        assert envelope is not None
        etree.SubElement(envelope, "isolation_magique").text = "oui"

    return edit_filed(t, change)


@mutation("filed-without-test", scenario=SCENARIO, breaks=["DPE-002"], category=CATEGORY, where="request.query.mode")
def filed_without_test(t: TraceEdit) -> float:
    """The software files its first DPE for real without sending it in test mode first."""
    tested = [e for e in uploads(t, "complete") if e.param("mode") == "test"]
    t.drop(lambda raw: raw.get("seq") not in {e.seq for e in tested})
    return next(e for e in uploads(t, "complete") if e.param("mode") == "real").seq


@mutation("blocked-dpe-reported-filed", scenario=SCENARIO, breaks=["DPE-003"], category=CATEGORY, where="output.filed")
def blocked_dpe_reported_filed(t: TraceEdit) -> float:
    """The software tells the diagnostician a DPE with an input error was filed."""
    t.output("blocking")["filed"] = True
    return t.step("blocking").seq


@mutation(
    "findings-not-shown", scenario=SCENARIO, breaks=["DPE-004"], category=CATEGORY, where="output.findings"
)
def findings_not_shown(t: TraceEdit) -> float:
    """The software does not show the observatory's warnings."""
    t.output("low_score").pop("findings", None)
    return t.step("low_score").seq


@mutation(
    "findings-without-type", scenario=SCENARIO, breaks=["DPE-004"], category=CATEGORY, where="output.findings"
)
def findings_without_type(t: TraceEdit) -> float:
    """The software shows the observatory's messages but drops their type (blocking or warning): the user cannot tell
    which stops the filing."""
    for f in t.output("low_score")["findings"]:
        f.pop("type", None)
    return t.step("low_score").seq


@mutation(
    "class-from-energy-only",
    scenario=SCENARIO,
    breaks=["DPE-005"],
    category=CATEGORY,
    where="request.body/logement/sortie",
)
def class_from_energy_only(t: TraceEdit) -> float:
    """The software writes the energy class alone as the label of the home whose emissions class is worse."""
    return edit_filed(t, set_text("logement/sortie/ep_conso/classe_bilan_dpe", "A"))


@mutation(
    "class-bound-read-inclusively",
    scenario=SCENARIO,
    breaks=["DPE-005"],
    category=CATEGORY,
    where="request.body/logement/sortie",
)
def class_bound_read_inclusively(t: TraceEdit) -> float:
    """The software reads a class's upper bound as inside the class: the home whose primary energy is exactly on a
    bound, and the one whose emissions are, written one class better (label and emissions class)."""
    first = None
    for step, path in (("energy_on_bound", "logement/sortie/ep_conso/classe_bilan_dpe"),
                       ("emissions_on_bound", "logement/sortie/emission_ges/classe_emission_ges")):
        sent = uploads(t, step)
        assert sent, f"the reference files the DPE of step {step}"
        for e in sent:
            edit_dpe(e, one_class_better(path))
            if path.endswith("classe_emission_ges"):
                edit_dpe(e, one_class_better("logement/sortie/ep_conso/classe_bilan_dpe"))
        first = sent[0].seq if first is None else first
    assert first is not None
    return first


def one_class_better(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        found = root.find(path)
        assert found is not None and found.text and found.text > "A", path
        found.text = chr(ord(found.text) - 1)

    return change


@mutation(
    "product-name-as-software-id",
    scenario=SCENARIO,
    breaks=["DPE-006"],
    category=CATEGORY,
    where="request.body/administratif/diagnostiqueur",
)
def product_name_as_software_id(t: TraceEdit) -> float:
    """The software writes its product name instead of its registration id."""
    return edit_filed(t, set_text(DIAG + "usr_logiciel_id", "HomeApp"))


@mutation(
    "dpe-stale-geolocation",
    scenario=SCENARIO,
    breaks=["DPE-008"],
    category=CATEGORY,
    where="request.body/administratif/geolocalisation",
)
def dpe_stale_geolocation(t: TraceEdit) -> float:
    """The software geocodes the home of a later visit, but writes its DPE with the geolocation it kept from the DPE
    before (the complete home's key, score and building): another building's DPE."""
    geo = "administratif/geolocalisation/"
    kept = parse_xml(uploads(t, "complete")[-1].raw["request"]["body"]["text"].encode("utf-8"))
    sent = uploads(t, "energy_on_bound")
    assert sent, "the reference files the DPE of step energy_on_bound"
    for path in ("adresse_bien/ban_id", "adresse_bien/ban_score", "adresse_bien/label_brut", "rnb_id"):
        value = kept.findtext(geo + path)
        assert value is not None, path
        for e in sent:
            edit_dpe(e, set_text(geo + path, value))
    return sent[0].seq


@mutation("dpe-number-not-kept", scenario=SCENARIO, breaks=["DPE-007"], category=CATEGORY, where="output.numero_dpe")
def dpe_number_not_kept(t: TraceEdit) -> float:
    """The software keeps its own file number instead of the observatory's."""
    t.output("complete")["numero_dpe"] = "F000000042"
    return t.step("complete").seq


@mutation(
    "dpe-without-rnb",
    scenario=SCENARIO,
    breaks=["DPE-008"],
    category=CATEGORY,
    where="request.body/administratif/geolocalisation",
)
def dpe_without_rnb(t: TraceEdit) -> float:
    """The software leaves the building's RNB id out of the DPE."""
    return edit_filed(t, remove("administratif/geolocalisation/rnb_id"))


@mutation(
    "dpe-registry-never-asked",
    scenario=SCENARIO,
    breaks=["DPE-008"],
    category=CATEGORY,
    where="request.body/administratif/geolocalisation",
)
def dpe_registry_never_asked(t: TraceEdit) -> float:
    """The software geocodes the address but never asks the building registry, and files the DPE with no RNB id."""
    asked = {e.seq for e in t.in_step("complete", "buildings")}
    assert asked, "the reference asks the registry for the DPE's building"
    t.drop(lambda raw: raw.get("seq") not in asked)
    return edit_filed(t, remove("administratif/geolocalisation/rnb_id"))


@mutation("incomplete-reported-filed", scenario=SCENARIO, breaks=["DPE-009"], category=CATEGORY, where="output.filed")
def incomplete_reported_filed(t: TraceEdit) -> float:
    """The software tells the diagnostician a DPE located at street level only was filed."""
    t.output("incomplete")["filed"] = True
    return t.step("incomplete").seq


@mutation(
    "no-certification-number",
    scenario=SCENARIO,
    breaks=["DPE-010"],
    category=CATEGORY,
    waves=W4,
    where="request.body/administratif/diagnostiqueur/numero_certification_diagnostiqueur",
)
def no_certification_number(t: TraceEdit) -> float:
    """The software writes the diagnostician's name where the certification number goes."""
    return edit_filed(t, set_text(DIAG + "numero_certification_diagnostiqueur", "Camille Lemaire"))


@mutation(
    "blocked-dpe-filed-in-background",
    scenario=SCENARIO,
    breaks=["DPE-002", "DPE-003"],
    category=CATEGORY,
    where="request.query.mode",
)
def blocked_dpe_filed_in_background(t: TraceEdit) -> float:
    """The software answers that the DPE with an input error was kept back, then its upload queue files it for real
    anyway, after the step (the observatory refuses it: 422 dpe-not-receivable): a DPE with a blocking finding
    filed (DPE-003), for real although its test found it not receivable (DPE-002)."""
    return filed_after_its_step(t, "blocking")


@mutation(
    "incomplete-dpe-filed-in-background",
    scenario=SCENARIO,
    breaks=["DPE-002", "DPE-009"],
    category=CATEGORY,
    where="request.query.mode",
)
def incomplete_dpe_filed_in_background(t: TraceEdit) -> float:
    """The software answers that the DPE located at street level only was kept back, then its upload queue files it
    (written with the street-level geocoding) for real after the scenario's last step (the observatory refuses it:
    422 dpe-not-receivable)."""
    feature = t.in_step("incomplete", "geocoder")[-1].response_json["features"][0]["properties"]
    seq = filed_after_its_step(t, "complete", t.step(ON_BOUNDS[-1]))  # the scenario's last step
    e = next(e for e in t.exchanges("observatory") if e.seq == seq)
    geo = "administratif/geolocalisation/"
    for path, value in (("adresse_bien/ban_id", feature["id"]), ("adresse_bien/ban_type", feature["type"]),
                        ("adresse_bien/ban_score", str(feature["score"]))):
        edit_dpe(e, set_text(geo + path, value))
    edit_dpe(e, remove(geo + "rnb_id"))
    e.raw["response"]["body"]["json"]["controle_coherence"] = [
        finding("erreur_saisie", "geolocalisation", f"incomplete geocoding: the address is located at "
                f"{feature['type']} level, not at a house number", "geolocalisation/adresse_bien")
    ]
    return seq


def filed_after_its_step(t: TraceEdit, step: str, after: Note | None = None) -> float:
    """The DPE step ``step`` tested, filed for real just after the step (or ``after``) answered, refused by the
    observatory."""
    note = after or t.step(step)
    tested = next(e for e in uploads(t, step) if e.param("mode") == "test")
    raw = copied(tested, note.seq + 0.5)
    raw["request"]["query"] = {"mode": ["real"]}
    findings = tested.raw["response"]["body"]["json"]["controle_coherence"]
    return t.insert(refused(raw, 422, "dpe-not-receivable", controle_coherence=findings))
