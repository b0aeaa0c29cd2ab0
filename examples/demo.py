"""The end-to-end demo behind ./demo: every stage of the pipeline that exists, on the embedded defaults.

Each step runs the real ``usine`` command a user would type and says where its output went.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

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

    step("Outputs")
    for label, path in outputs:
        print(f"  {label:<48} {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
