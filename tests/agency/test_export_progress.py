"""Public export (open data, label copies, signed revocations) read back by the payment agency's own code;
wave progress from the registry and from a real payment ledger."""

from __future__ import annotations

import csv
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from conformity.agency.progress import wave_progress
from conformity.agency.progress_view import progress_html
from conformity.agency.registry import Registry
from conformity.agency.submit import decide_bundle
from conformity.catalog import Catalog
from conformity.catalog.schema import schema_problems
from conformity.labels import sign_label, verify_revocations
from conformity.payments import RunOptions, run_payments
from conformity.payments.labelbook import load_labelbook
from conformity.payments.payees import load_payer
from conformity.signing import KeyRing, SigningKey, verify_document
from tests.agency.helpers import AGENCY, CATEGORY, DECIDED, DEFECT_FAILS, WAVE, Runs, label_bundle, usine
from tests.payments.builders import events_for, installation, label_fields, write_jsonl, write_label

PAYER = Path(__file__).resolve().parents[2] / "examples" / "payments" / "payer.toml"
AGENCY_KEYS = KeyRing([AGENCY.verify_key])


@pytest.fixture
def decided(runs: Runs, catalog: Catalog, trust: KeyRing, tmp_path: Path, home: Path) -> Path:
    """The default registry of ``home``: the reference labelled, the defective vendor refused."""
    registry = home / "agency" / "registry.sqlite3"
    label_bundle(runs.reference, catalog, trust, registry, home / "agency" / "agency-key.pem", tmp_path / "out")
    decide_bundle(runs.defective, catalog, trust, registry, home / "agency" / "agency-key.pem", tmp_path / "out",
                  now=DECIDED)
    return registry


def test_export_is_open_data_and_what_the_payment_agency_reads(decided: Path, tmp_path: Path) -> None:
    with Registry(decided) as reg:
        label_id = reg.labels()[0][0]["label_id"]
    assert usine("agency", "registry", "revoke", label_id, "--reason", "certificate checks disabled in 1.0.0").exit_code == 0
    out = tmp_path / "export"
    r = usine("agency", "registry", "export", "--out", out)
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (out / "labels").iterdir()) == [f"label-{label_id}.json", "revocations.json"]
    data = verify_document(json.loads((out / "labelled.json").read_text()),
                           KeyRing.from_paths([out / "agency-key.pub.pem"]))
    assert not schema_problems("registry-export", data, "labelled.json")
    [entry] = data["waves"][0]["categories"][0]["labels"]
    assert (data["waves"][0]["wave"], data["waves"][0]["categories"][0]["category"]) == (WAVE, CATEGORY)
    assert entry["status"] == "revoked" and entry["revoked_reason"].startswith("certificate checks")
    with (out / "labelled.csv").open(newline="") as fh:
        [row] = list(csv.DictReader(fh))
    assert row["label_id"] == label_id and row["status"] == "revoked" and row["vendor_name"] == entry["vendor"]["name"]
    keys = KeyRing.from_paths([out / "agency-key.pub.pem"])
    assert verify_revocations(json.loads((out / "labels" / "revocations.json").read_text()), keys).revoked_at(label_id)
    book = load_labelbook(out / "labels", keys)  # the payment agency's reader
    assert not book.refused and [lab.id for lab in book.labels()] == [label_id] and label_id in book.revocations
    label_file = out / "labels" / f"label-{label_id}.json"
    unknown = usine("label", "verify", label_file, "--key", out / "agency-key.pub.pem")  # no list: never VALID
    assert unknown.exit_code == 3 and "REVOCATION STATUS UNKNOWN" in unknown.output
    assert entry["run_id"] == verify_document(json.loads(label_file.read_text()), keys)["run"]["id"] == row["run_id"]
    assert entry["requirements_reviewed"] == 17  # the reference's 14 MUST and 3 SHOULD document/manual accepted
    revoked = usine("label", "verify", label_file, "--key", out / "agency-key.pub.pem",
                    "--revocations", out / "labels" / "revocations.json")
    assert revoked.exit_code == 1 and "revoked" in revoked.output


def test_progress_with_the_payment_funnel(decided: Path, catalog: Catalog, tmp_path: Path) -> None:
    assert usine("agency", "registry", "export", "--out", tmp_path / "export").exit_code == 0
    common = {"vendor": "usine-reference", "software": "usine-reference.refapp", "version": "1.0.0",
              "category": CATEGORY}
    busy, quiet = installation(site="750100011", size="M", **common), installation(site="750100029", size="S", **common)
    start = DECIDED + dt.timedelta(days=1)
    events = write_jsonl(tmp_path / "events.jsonl", events_for(busy, 6, start) + events_for(quiet, 1, start))
    ledger = tmp_path / "ledger.sqlite3"
    from conformity.infrastructure_keys import parse_keys
    from tests.payments.builders import infrastructure_keys  # the infrastructure that sealed the events

    stats = run_payments(catalog, RunOptions(
        wave=WAVE, labels=tmp_path / "export" / "labels", events=(events,), ledger=ledger, out=tmp_path / "pay",
        keys=AGENCY_KEYS, infrastructure=parse_keys(infrastructure_keys()), payer=load_payer(PAYER), payees={},
        as_of=DECIDED + dt.timedelta(days=60)))
    assert stats.paid == 1, stats

    with Registry(decided) as reg:
        p = wave_progress(catalog, reg, WAVE, ledger, now=DECIDED + dt.timedelta(days=61))
    hospital = next(c for c in p.categories if c.category == CATEGORY)
    assert hospital.submissions == 2 and hospital.submitted == 1 and hospital.vendors["labelled"] == 1
    assert p.requirements[0].requirement == DEFECT_FAILS and p.requirements[0].failed == 1
    assert p.requirements[0].pass_rate == 0.5
    [funnel] = [f for f in p.funnel or [] if f.category == CATEGORY]
    assert (funnel.labelled, funnel.installed, funnel.flowing, funnel.paid) == (1, (1, 2), (1, 1), (1, 1))
    assert funnel.amount_cents == 62_000 * 100 and funnel.currency == "EUR"

    html = tmp_path / "progress.html"
    r = usine("agency", "progress", "--wave", WAVE, "--ledger", ledger, "--html", html)
    assert r.exit_code == 0, r.output
    assert "Funnel" in r.output and DEFECT_FAILS in r.output
    page = html.read_text()
    assert page.startswith("<!DOCTYPE html>") and "Funnel: labelled → installed → data flowing → paid" in page
    assert "<script" not in page and "http://" not in page and "https://" not in page  # self-contained


def test_progress_of_a_wave_without_submissions(catalog: Catalog, tmp_path: Path) -> None:
    with Registry(tmp_path / "r.sqlite3") as reg:
        p = wave_progress(catalog, reg, "2027-W2")
    assert {c.category for c in p.categories} >= {"HOSPITAL", "RADIOLOGY"} and not p.requirements
    assert "No decided submission yet" in progress_html(p)
    assert usine("agency", "progress", "--wave", "2099-W1", "--registry", tmp_path / "r.sqlite3").exit_code == 2


def jose_verified(path_or_doc: Path | dict[str, Any], key_pem: Path, *, large: bool = False) -> dict[str, Any]:
    """Verified as a third party does, with an off-the-shelf JOSE library (joserfc) and nothing of usine: the JWS
    JSON serialization, EdDSA, a ``kid`` that is the RFC 7638 thumbprint of the key; its payload. ``large``: a
    payload past joserfc's default limit (128 kB: a trace), read with a registry that allows it (as the README says)."""
    from joserfc import jws
    from joserfc.jwk import OKPKey

    class Large(jws.JWSRegistry):
        max_payload_length = 64 * 1024 * 1024

    key = OKPKey.import_key(key_pem.read_text())
    signed = json.loads(path_or_doc.read_text()) if isinstance(path_or_doc, Path) else path_or_doc
    registry = Large(algorithms=["EdDSA"]) if large else None
    verified = jws.deserialize_json(signed, key, algorithms=["EdDSA"], registry=registry)
    assert verified.headers()["kid"] == key.thumbprint()
    payload: dict[str, Any] = json.loads(verified.payload)
    return payload


# what a third party sees with joserfc 1.x (the README says so): its warning on the name EdDSA, the signature checked
@pytest.mark.filterwarnings("ignore:EdDSA is deprecated via RFC 9864")
def test_every_signed_artefact_verifies_with_an_off_the_shelf_jose_library(decided: Path, runs: Runs,
                                                                          tmp_path: Path) -> None:
    """Labels, the revocation list, the signed open data (labelled.json) and the sandbox's traces: each one a JWS
    that joserfc verifies alone, and refuses once a byte of its payload changed."""
    import zipfile

    from joserfc.errors import BadSignatureError

    out = tmp_path / "export"
    assert usine("agency", "registry", "export", "--out", out).exit_code == 0
    key = out / "agency-key.pub.pem"
    export = jose_verified(out / "labelled.json", key)
    assert export["format"] == "usine.registry-export/2" and not schema_problems("registry-export", export, "x")
    [label_file] = (out / "labels").glob("label-*.json")
    label = jose_verified(label_file, key)
    assert label["label_id"] == export["waves"][0]["categories"][0]["labels"][0]["label_id"]
    revocations = jose_verified(out / "labels" / "revocations.json", key)
    assert revocations["format"].startswith("usine.revocations/") and "next_update" in revocations
    with zipfile.ZipFile(runs.reference) as bundle:
        names = [n for n in bundle.namelist() if n.startswith("traces/")]
        traces = [json.loads(bundle.read(n)) for n in names]
    assert len(traces) > 5
    for trace in traces:
        assert jose_verified(trace, runs.trust, large=True)["exchanges"]
    edited = json.loads((out / "labelled.json").read_text())
    edited["payload"] = edited["payload"][:-2] + ("A" if edited["payload"][-2] != "A" else "B") + edited["payload"][-1]
    with pytest.raises(BadSignatureError):
        jose_verified(edited, key)


def test_an_export_into_a_labels_folder_holding_a_label_the_registry_does_not_know_is_refused(
        decided: Path, home: Path, tmp_path: Path) -> None:
    """``labels/`` is what the payment agency pays on: a label file left there (an export of a registry since
    restored from a backup, another registry's export under the same key) is a label the registry's revocation list
    never revokes. The export refuses the folder, naming the file, and writes nothing."""
    out = tmp_path / "export"
    assert usine("agency", "registry", "export", "--out", out).exit_code == 0
    key = SigningKey.load(home / "agency" / "agency-key.pem")
    stray = write_label(out / "labels", sign_label(label_fields(vendor="acme"), key), name="label-lbl_gone.json")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    again = usine("agency", "registry", "export", "--out", out)
    assert again.exit_code == 2, again.output
    assert "label-lbl_gone.json" in again.output and "does not" in again.output, again.output
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before  # nothing written
    (out / "labels" / "sub").mkdir()
    stray.rename(out / "labels" / "sub" / "copy.json")
    assert usine("agency", "registry", "export", "--out", out).exit_code == 2
    (out / "labels" / "sub" / "copy.json").unlink()
    (out / "labels" / "sub").rmdir()
    assert usine("agency", "registry", "export", "--out", out).exit_code == 0  # its own files: exported again


def test_the_export_names_the_key_id_to_pin_rather_than_trusting_the_key_shipped_beside_the_labels(
        decided: Path, home: Path, tmp_path: Path) -> None:
    """Whoever can write the export folder on its way to the payment agency can replace the labels and
    agency-key.pub.pem together: the key beside the files proves nothing. The export says the key id (RFC 7638
    thumbprint) the payment agency must find in the key it trusts, obtained from the agency itself."""
    out = tmp_path / "export"
    r = usine("agency", "registry", "export", "--out", out)
    assert r.exit_code == 0, r.output
    kid = SigningKey.load(home / "agency" / "agency-key.pem").kid
    assert kid in r.output and "not the copy" in r.output, r.output


def test_the_export_refuses_a_key_path_holding_no_key(decided: Path, tmp_path: Path) -> None:
    """A mistyped ``--key``: the export made a new agency key there (its folders too) and signed the revocation list
    and the open data with it — exit 0 on a registry without labels, a list nobody trusts. The agency's key must
    exist: exit 2, naming the path and the option, nothing written, no key made."""
    out, typo = tmp_path / "export", tmp_path / "agnecy" / "agency-key.pem"
    r = usine("agency", "registry", "export", "--out", out, "--key", typo)
    assert r.exit_code == 2, r.output
    assert str(typo) in r.output and "--key" in r.output and "no agency key there" in r.output
    assert not out.exists() and not typo.parent.exists()


def test_after_a_key_rotation_the_export_takes_the_former_keys_labels_only_when_named(
        decided: Path, tmp_path: Path) -> None:
    """The agency rotates its key: the labels the former key signed stay valid (signed once, never again), the new
    key signs the revocation list and the open data. The export refuses labels of a signer it was not told of (the
    wrong key given, another agency's registry), and takes the former key's when named ``--retired-key``; the payment
    agency, trusting both keys, reads every label and the new list."""
    new = SigningKey.from_seed(b"usine tests: the agency's next key")
    new.save(tmp_path / "new" / "agency-key.pem")
    former = tmp_path / "former.pub.pem"
    former.write_text(AGENCY.verify_key.pem(), encoding="utf-8")
    out = tmp_path / "export"
    refused = usine("agency", "registry", "export", "--out", out, "--key", tmp_path / "new" / "agency-key.pem")
    assert refused.exit_code == 2 and "--retired-key FORMER.pub.pem" in refused.output and not out.exists()
    stranger = tmp_path / "stranger.pub.pem"
    stranger.write_text(SigningKey.from_seed(b"another agency").verify_key.pem(), encoding="utf-8")
    other = usine("agency", "registry", "export", "--out", out, "--key", tmp_path / "new" / "agency-key.pem",
                  "--retired-key", stranger)
    assert other.exit_code == 2 and "nor a retired one given" in other.output and not out.exists()
    done = usine("agency", "registry", "export", "--out", out, "--key", tmp_path / "new" / "agency-key.pem",
                 "--retired-key", former)
    assert done.exit_code == 0, done.output
    assert f"key id {new.kid}, and {AGENCY.kid} (retired, AGENCY_PUB_1)" in done.output, done.output
    with Registry(decided) as reg:
        label_id = reg.labels()[0][0]["label_id"]
    label = json.loads((out / "labels" / f"label-{label_id}.json").read_text())
    assert verify_document(label, AGENCY_KEYS)["label_id"] == label_id  # as the former key signed it
    assert verify_document(json.loads((out / "labelled.json").read_text()), KeyRing([new.verify_key]))
    book = load_labelbook(out / "labels", KeyRing([AGENCY.verify_key, new.verify_key]))
    assert not book.refused and [lab.id for lab in book.labels()] == [label_id] and book.revocation_list is not None
