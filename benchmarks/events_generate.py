"""Generate a payment-run workload: N data-received events over M installations, labels, keys and payees.

Deterministic for a seed. A realistic mix: installations of every category of the wave and every
site size, with activity spread from busy to sparse (so some are paid and some are not), events
mostly in time order through the funding window, of the kinds and document types each category
sends, plus a little noise: re-sent duplicates, malformed lines, unlabelled software, versions no
label covers, events outside the funding window. The events file is sealed as the infrastructure
seals it (signed segments of 1,000 lines in ``events.jsonl.segments``, ``conformity.segments``), with
its keys in ``infrastructure-keys.json``; a few forged lines are appended after the last segment.
The labels folder holds the agency's signed revocation list, made fresh again by ``fresh_revocations``.

    .venv/bin/python benchmarks/events_generate.py --events 1000000 --out /tmp/bench
"""

from __future__ import annotations

import argparse
import bisect
import datetime as dt
import hashlib
import json
import math
import random
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from arguments import count  # noqa: E402

from conformity.catalog import load_catalog  # noqa: E402
from conformity.infrastructure_keys import keys_document  # noqa: E402
from conformity.labels import parse_time, sign_label, sign_revocations  # noqa: E402
from conformity.payments.payees import iban_check_digits  # noqa: E402
from conformity.segments import DEFAULT_EVERY, Sealer  # noqa: E402
from conformity.signing import SigningKey  # noqa: E402
from sandbox.events import data_received  # noqa: E402

SOURCES = ("urn:usine:sandbox:dmp", "urn:usine:sandbox:mss")
FORGED = 100
SIZES = ("S", "M", "L")
DOC_TYPES = ("34106-7", "11502-2", "18748-4", "60591-5", "60593-1")


@dataclass(frozen=True, slots=True)
class Workload:
    """Where the generated files are."""

    events: Path
    labels: Path
    key: Path
    infrastructure: Path
    payees: Path
    wave: str
    as_of: str


#: what the generated files depend on besides the arguments: a workload made by other code is made again
GENERATOR_FILES = ("benchmarks/events_generate.py", "sandbox/events.py", "conformity/segments.py", "conformity/labels.py",
                   "conformity/infrastructure_keys.py", "conformity/signing.py", "conformity/payments/payees.py")


def generator_fingerprint(events: int, installations: int | None, seed: int, wave_id: str) -> str:
    """A digest of the generator's code, the wave's definition and the arguments: equal fingerprints, same files."""
    h = hashlib.sha256(json.dumps([events, installations, seed, wave_id]).encode())
    for name in (*GENERATOR_FILES, f"waves/{wave_id}.toml"):
        h.update(name.encode() + b"\0" + (ROOT / name).read_bytes())
    return h.hexdigest()


def fresh_revocations(labels: Path, agency: SigningKey, as_of: str) -> None:
    """The agency's (empty) revocation list, fresh for a run now or at ``as_of``."""
    now = dt.datetime.now(dt.UTC)
    validity = max(dt.timedelta(days=30), parse_time(as_of) - now + dt.timedelta(days=30))
    (labels / "revocations.json").write_text(json.dumps(sign_revocations([], agency, now=now, validity=validity)),
                                             encoding="utf-8")


def _doc_type(rng: random.Random, rule_types: tuple[str, ...]) -> str:
    if rule_types and rng.random() < 0.9:
        return rng.choice(rule_types)
    return rng.choice(DOC_TYPES)


def default_installations(n_events: int) -> int:
    """The installed base when none is given: one installation for 200 events."""
    return max(10, n_events // 200)


def generate(out: Path, n_events: int, n_installations: int | None = None, seed: int = 1,
             wave_id: str = "2026-W1") -> Workload:
    """Write events.jsonl (+ .segments), labels/, agency.pub.pem, infrastructure-keys.json, payees.toml under ``out``."""
    rng = random.Random(seed)
    wave = load_catalog().wave(wave_id)
    f = wave.funding
    categories = [c for c in wave.categories if c in f.prices]
    m = n_installations or default_installations(n_events)
    out.mkdir(parents=True, exist_ok=True)
    key = SigningKey.from_seed(f"usine benchmark agency {seed}".encode())
    key.save(out / "agency.pem")

    n_software = max(5, m // 50)
    software = []
    labels = out / "labels"
    labels.mkdir(exist_ok=True)
    for i in range(n_software):
        category = categories[i % len(categories)]
        vendor = f"vendor{i % max(1, n_software // 2):03d}"
        sw = {"id": f"sw{i:04d}", "name": f"Software {i}", "version": "2.1", "registration_id": f"REG-{i:04d}"}
        software.append((vendor, category, sw))
        if i % 10 == 9:
            continue  # one software in ten has no label
        fields = {"label_id": f"lbl_bench{seed:04d}{i:08d}", "vendor": {"id": vendor, "name": f"Vendor {vendor}"},
                  "software": {"id": sw["id"], "name": sw["name"], "registration_id": sw["registration_id"]},
                  "versions": ["2.0", "2.1"], "category": category, "wave": wave_id,
                  "referentials": {"DOCSHARE": "1.0"}, "requirements_passed": ["DOCSHARE-001"],
                  "run": {"id": f"{seed:08x}{i:08x}", "seed": seed, "harness": "bench",
                          "submission": "sub_" + hashlib.sha256(sw["id"].encode()).hexdigest()[:20]},
                  "requirements_reviewed": [],
                  "issued": f"{f.window_start.isoformat()}T00:00:00Z", "expires": wave.label_valid_until.isoformat(),
                  "bundle_sha256": hashlib.sha256(sw["id"].encode()).hexdigest()}
        (labels / f"{fields['label_id']}.json").write_text(json.dumps(sign_label(fields, key).signed), encoding="utf-8")

    installations: list[dict[str, Any]] = []
    weights = []
    for j in range(m):
        vendor, category, sw = software[j % n_software]
        version = "1.0" if rng.random() < 0.02 else sw["version"]
        size = rng.choices(SIZES, weights=(6, 3, 1))[0]
        site = {"id": f"{100000000 + j:09d}", "size": size, "name": f"Site {j}"}
        installations.append({"id": f"ins_{j:07d}", "vendor_id": vendor, "software": {**sw, "version": version},
                              "site": site, "wave": wave_id, "category": category})
        weights.append(math.exp(rng.gauss(0, 1.2)))
    cumulative = []
    total = 0.0
    for w in weights:
        total += w
        cumulative.append(total)

    start = dt.datetime.combine(f.window_start, dt.time(), tzinfo=dt.UTC)
    span_s = (f.window_end - f.window_start).days * 86_400
    sources = SOURCES
    infra = SigningKey.from_seed(f"usine benchmark infrastructure {seed}".encode())
    (out / "infrastructure-keys.json").write_text(json.dumps(keys_document([(infra.verify_key, SOURCES)])))
    for old in (out / "events.jsonl", out / "events.jsonl.segments"):
        old.unlink(missing_ok=True)
    sealer = Sealer(out / "events.jsonl", infra, every=DEFAULT_EVERY)
    recent: list[tuple[bytes, str, str]] = []
    with open(out / "events.jsonl", "wb") as fh:
        for i in range(n_events):
            r = rng.random()
            if r < 0.001:
                fh.write(b'{"specversion": "1.0", "id": \n')
                sealer.add(b'{"specversion": "1.0", "id": \n')
                continue
            if r < 0.011 and recent:
                again = rng.choice(recent)  # a re-sent duplicate
                fh.write(again[0])
                sealer.add(*again)
                continue
            inst = installations[min(m - 1, bisect.bisect_left(cumulative, rng.random() * total))]
            offset = int(span_s * i / n_events + rng.uniform(-3, 3) * 86_400)
            if r < 0.014:
                offset = -rng.randint(1, 60) * 86_400  # before the funding window
            when = start + dt.timedelta(seconds=max(-10**8, offset), milliseconds=rng.randint(0, 999))
            rule = f.proof_of_use(inst["category"])
            kind = rng.choice(rule.kinds) if rng.random() < 0.95 else rng.choice(("document", "message"))
            ref = f"ref-{i}"
            ev = data_received(inst, source=sources[kind == "message"], kind=kind,
                               document_type=_doc_type(rng, rule.document_types), size=rng.randint(2_000, 400_000),
                               sha256=hashlib.sha256(ref.encode()).hexdigest(), reference=ref, when=when)
            ev["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            line = ((json.dumps(ev, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8"),
                    ev["source"], ev["time"])
            fh.write(line[0])
            sealer.add(*line)
            if len(recent) < 1000:
                recent.append(line)
            else:
                recent[rng.randrange(1000)] = line
        sealer.seal()
        for k in range(FORGED):  # the attack: well-formed lines of a labelled software, never sealed
            forged = data_received(installations[k % m], source="https://attacker.example/fake", kind="document",
                                   document_type=DOC_TYPES[0], size=5_000, sha256="0" * 64, reference=f"forged-{k}",
                                   when=start + dt.timedelta(days=10))
            fh.write((json.dumps(forged, separators=(",", ":")) + "\n").encode("utf-8"))

    vendors = sorted({v for v, _, _ in software})
    lines = ['format = "usine.payees/1"', ""]
    for k, vendor in enumerate(vendors):
        if k % 7 == 6:
            continue  # some vendors have not sent their bank details
        bban = f"30004{k:05d}{k:011d}00"
        lines += [f"[vendors.{vendor}]", f'name = "Vendor {vendor}"',
                  f'iban = "FR{iban_check_digits("FR", bban)}{bban}"', 'bic = "BNPAFRPPXXX"', ""]
    (out / "payees.toml").write_text("\n".join(lines), encoding="utf-8")
    as_of = dt.datetime.combine(f.window_end, dt.time(23, 59, 59), tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")
    fresh_revocations(labels, key, as_of)
    return Workload(out / "events.jsonl", labels, out / "agency.pub.pem", out / "infrastructure-keys.json",
                    out / "payees.toml", wave_id, as_of)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=count(), default=1_000_000, help="number of event lines (default 1,000,000)")
    parser.add_argument("--installations", type=count(), default=None, help="number of installations (default N/200)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--wave", default="2026-W1")
    parser.add_argument("--out", type=Path, required=True, help="folder for the generated files")
    args = parser.parse_args(argv)
    w = generate(args.out, args.events, args.installations, args.seed, args.wave)
    print(json.dumps({f: str(getattr(w, f)) for f in w.__dataclass_fields__}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
