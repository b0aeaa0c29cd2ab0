"""The end-to-end demo behind ./demo: every stage of the pipeline that exists, on the embedded defaults.

Each step runs the real ``usine`` command a user would type and says where its output went.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
USINE = [sys.executable, "-m", "conformity"]


def step(title: str) -> None:
    print(f"\n=== {title}", flush=True)


def usine(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run one usine command as a user would, echoing it."""
    print("$ usine " + " ".join(args), flush=True)
    proc = subprocess.run([*USINE, *args], cwd=ROOT, text=True, capture_output=True)
    if proc.stdout:
        print(proc.stdout.rstrip())
    if proc.stderr:
        print(proc.stderr.rstrip(), file=sys.stderr)
    if check and proc.returncode != 0:
        raise SystemExit(f"demo: 'usine {' '.join(args)}' failed with exit code {proc.returncode}")
    return proc


class serve_sandbox:
    """``usine sandbox serve`` over HTTPS in the background, until the block ends."""

    def __init__(self, data: Path, pki: Path):
        self.data, self.pki = data, pki
        self.token = secrets.token_urlsafe(16)

    def __enter__(self) -> tuple[str, str]:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        args = ["sandbox", "serve", "--port", str(port), "--data", str(self.data),
                "--tls-cert", str(self.pki / "server.pem"), "--tls-key", str(self.pki / "server.key")]
        print("$ usine " + " ".join(args) + " &", flush=True)
        env = {**os.environ, "USINE_SANDBOX_ADMIN_TOKEN": self.token}
        self.proc = subprocess.Popen([*USINE, *args], cwd=ROOT, env=env)
        base = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(base + "/health", verify=str(self.pki / "ca.pem")).raise_for_status()
                break
            except httpx.HTTPError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("demo: the sandbox did not start")
                time.sleep(0.2)
        print(f"sandbox serving on {base}")
        return base, self.token

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=15)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "demo-out", help="Output folder (default: demo-out/).")
    args = parser.parse_args()
    out: Path = args.out
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    outputs: list[tuple[str, Path]] = []

    step("1. Catalog: load and cross-check every referential and wave")
    usine("validate")
    usine("referentials", "list")

    step("2. Specifications: one consolidated document per wave and category")
    specs = out / "specifications"
    for wave in ("2026-W1", "2027-W2"):
        for category in ("HOSPITAL", "GP"):
            html = specs / f"{wave}-{category}.html"
            usine("wave", "show", wave, "--category", category, "--format", "html", "-o", str(html))
            outputs.append((f"specification {wave} {category} (HTML)", html))
    md = specs / "2027-W2-HOSPITAL.md"
    usine("wave", "show", "2027-W2", "--category", "HOSPITAL", "--format", "markdown", "-o", str(md))
    outputs.append(("specification 2027-W2 HOSPITAL (Markdown)", md))

    step("3. What changes between waves: the vendor's to-do list")
    diff = out / "diff-2026-W1-2027-W2.txt"
    usine("wave", "diff", "2026-W1", "2027-W2", "--category", "HOSPITAL")
    usine("wave", "diff", "2026-W1", "2027-W2", "-o", str(diff))
    outputs.append(("wave diff 2026-W1 → 2027-W2, all categories", diff))

    step("4. Coverage: requirements → checks")
    proc = usine("coverage", "--wave", "2027-W2")
    cov = out / "coverage-2027-W2.txt"
    cov.write_text(proc.stdout)
    outputs.append(("coverage of 2027-W2", cov))

    step("5. Sandbox: the national services imitated, over real TLS")
    pki = out / "pki"
    usine("sandbox", "pki", "--out", str(pki))
    with serve_sandbox(out / "sandbox", pki) as (base_url, token):
        ca = str(pki / "ca.pem")
        with httpx.Client(base_url=base_url, verify=ca, headers={"Authorization": f"Bearer {token}"}) as admin:
            session = admin.post("/admin/sessions", json={"seed": 42, "label": "demo"}).json()
            sid = session["session_id"]
            print(f"test session {sid}: services {', '.join(session['endpoints'])}")
            lookup = httpx.post(session["endpoints"]["insi"] + "/lookup", verify=ca, json={})
            print(f"an unauthenticated look-up is refused: {lookup.status_code} {lookup.json()['code']}")
            trace_path = out / "sandbox-trace.json"
            trace_path.write_text(json.dumps(admin.get(f"/admin/sessions/{sid}/trace").json(), indent=2))
            keys = admin.get("/.well-known/usine-trace-keys").json()["keys"]
            outputs.append(("signed trace of a test session", trace_path))
            print(f"trace signed by key {keys[0]['kid'][:16]}…")

        step("6. Installed software at care sites sends data: data-received events")
        sys.path.insert(0, str(ROOT / "examples" / "sites"))
        from simulate import Site, simulate_sites

        sites = [Site("750100011", "L", "CHU Demo"), Site("690200022", "M", "CH Demo Lyon"),
                 Site("130300033", "S", "Clinique Demo")]
        installs = simulate_sites(base_url, token, verify=ca, vendor_id="usine-reference",
                                  software={"id": "usine-reference.refapp", "name": "RefApp", "version": "1.0.0",
                                            "registration_id": "REG-REF-0001"},
                                  wave="2026-W1", category="HOSPITAL", sites=sites, documents=5)
        events = out / "sandbox" / "events" / "data-received.jsonl"
        n = sum(1 for _ in events.open())
        print(f"{len(installs)} installations sent documents; {n} data-received events emitted")
        outputs.append(("data-received events (CloudEvents JSON lines)", events))

    step("Outputs")
    for label, path in outputs:
        print(f"  {label:<48} {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
