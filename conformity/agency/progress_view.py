"""Wave progress as terminal tables (rich) and as one self-contained static HTML page."""

from __future__ import annotations

from html import escape

from rich.console import Console
from rich.table import Table

from conformity.agency.progress import RequirementRate, WaveProgress

STATUS_COLUMNS = (("labelled", "#18753c"), ("pending", "#4f8fd6"), ("refused", "#b3261e"), ("revoked", "#7a5300"),
                  ("expired", "#6b7280"))
TOP = 12


def _pct(x: float) -> str:
    return f"{100 * x:.0f}%"


def _pair(counts: tuple[int, int]) -> str:
    return f"{counts[0]} / {counts[1]}"


def print_progress(p: WaveProgress, console: Console) -> None:
    """The three tables in the terminal: categories, requirements that hurt most, funnel."""
    t = Table(title=f"{p.wave} — vendors by category ({p.generated})", title_justify="left")
    for col in ("category", "submissions", "software (labelled)", "vendors submitted", *(s for s, _ in STATUS_COLUMNS)):
        t.add_column(col, justify="left" if col == "category" else "right")
    for c in p.categories:
        t.add_row(f"{c.category} ({c.title})", str(c.submissions), f"{len(c.software)} ({len(c.software_labelled)})",
                  str(c.submitted), *(str(c.vendors[s]) for s, _ in STATUS_COLUMNS))
    console.print(t)
    r = Table(title=f"Automated requirements that fail most (top {TOP} of {len(p.requirements)})", title_justify="left")
    for col in ("requirement", "level", "evaluated", "passed", "failed", "errors", "pass rate"):
        r.add_column(col, justify="left" if col in ("requirement", "level") else "right")
    for q in p.requirements[:TOP]:
        r.add_row(q.requirement, q.level, str(q.evaluated), str(q.passed), str(q.failed), str(q.errored),
                  _pct(q.pass_rate))
    console.print(r)
    if p.funnel is not None:
        f = Table(title=f"Funnel (ledger {p.ledger}): software / installations", title_justify="left")
        for col in ("category", "labelled software", "installed", "data flowing", "paid", "amount"):
            f.add_column(col, justify="left" if col == "category" else "right")
        for row in p.funnel:
            f.add_row(row.category, str(row.labelled), _pair(row.installed), _pair(row.flowing), _pair(row.paid), f"{row.amount_cents / 100:,.2f} {row.currency}".strip())
        console.print(f)


CSS = """
body{font:15px/1.5 system-ui,sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#1f3a68;color:#fff;padding:20px 36px}h1{margin:0;font-size:23px}header p{margin:4px 0 0;opacity:.85}
main{padding:20px 36px;max-width:1150px}section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:14px 20px;margin-bottom:18px}
h2{font-size:17px;margin:4px 0 10px}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #eceef2;padding:5px 8px;text-align:right;vertical-align:middle}th{font-size:13px;color:#4b5563}
td:first-child,th:first-child{text-align:left}.bar{display:flex;height:14px;width:220px;background:#eef0f4;border-radius:3px;overflow:hidden}
.bar span{display:block;height:100%}.legend span{display:inline-block;width:11px;height:11px;margin:0 4px 0 12px;vertical-align:-1px}
.note{color:#4b5563;font-size:13px}.must{font-weight:600}
"""


def _bar(parts: list[tuple[int, str]], total: int) -> str:
    if total <= 0:
        return "<div class=bar></div>"
    spans = "".join(f"<span style='width:{100 * n / total:.1f}%;background:{color}'></span>" for n, color in parts if n)
    return f"<div class=bar>{spans}</div>"


def _req_row(q: RequirementRate) -> str:
    return (f"<tr><td class={'must' if q.level == 'MUST' else ''}>{escape(q.requirement)}</td><td>{escape(q.level)}</td>"
            f"<td>{q.evaluated}</td><td>{q.passed}</td><td>{q.failed}</td><td>{q.errored}</td><td>{_pct(q.pass_rate)}</td>"
            f"<td>{_bar([(q.passed, '#18753c'), (q.failed, '#b3261e'), (q.errored, '#d79b00')], q.evaluated)}</td></tr>")


def progress_html(p: WaveProgress) -> str:
    """A readable, self-contained page (inline CSS, no script, no external resource)."""
    e = escape
    legend = "".join(f"<span style='background:{c}'></span>{s}" for s, c in STATUS_COLUMNS)
    cat_rows = "".join(
        f"<tr><td><b>{e(c.category)}</b> {e(c.title)}</td><td>{c.submissions}</td>"
        f"<td>{len(c.software)} ({len(c.software_labelled)})</td><td>{c.submitted}</td>"
        + "".join(f"<td>{c.vendors[s]}</td>" for s, _ in STATUS_COLUMNS)
        + f"<td>{_bar([(c.vendors[s], col) for s, col in STATUS_COLUMNS], c.submitted)}</td></tr>"
        for c in p.categories)
    hurting = [q for q in p.requirements if q.failed or q.errored]
    clean = [q for q in p.requirements if not (q.failed or q.errored)]
    req_rows = "".join(_req_row(q) for q in hurting) or (
        f"<tr><td colspan=8>{'No decided submission yet.' if not clean else 'No automated requirement failed.'}</td></tr>")
    if clean:
        req_rows += (f"<tr><td colspan=8><details><summary>{len(clean)} requirement(s) passed by every submission"
                     f"</summary><table>{''.join(_req_row(q) for q in clean)}</table></details></td></tr>")
    funnel = ""
    if p.funnel is not None:
        top = max([r.labelled for r in p.funnel] + [1])
        rows = "".join(
            f"<tr><td><b>{e(r.category)}</b></td><td>{r.labelled}</td><td>{r.installed[0]} / {r.installed[1]}</td>"
            f"<td>{r.flowing[0]} / {r.flowing[1]}</td><td>{r.paid[0]} / {r.paid[1]}</td>"
            f"<td>{f'{r.amount_cents / 100:,.2f} {e(r.currency)}' if r.paid[1] else '—'}</td>"
            f"<td>{_bar([(r.paid[0], '#18753c'), (max(r.flowing[0] - r.paid[0], 0), '#4f8fd6'), (max(r.installed[0] - r.flowing[0], 0), '#a5c4ea'), (max(r.labelled - r.installed[0], 0), '#d5dbe5')], top)}</td></tr>"
            for r in p.funnel)
        funnel = (f"<section><h2>Funnel: labelled → installed → data flowing → paid</h2><table><tr><th>Category</th>"
                  f"<th>Labelled software</th><th>Installed</th><th>Data flowing</th><th>Paid</th><th>Amount</th>"
                  f"<th></th></tr>{rows}</table><p class=note>Counts are software / installations. Installed: the "
                  f"payment ledger received data from the installation under a valid label; data flowing: its proof "
                  f"of regular use is met; paid: paid once. Ledger: {e(p.ledger or '')}</p></section>")
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<title>Progress of wave {e(p.wave)}</title><style>{CSS}</style></head><body>"
            f"<header><h1>Wave {e(p.wave)}: labelling progress</h1><p>{e(p.title)} · generated {e(p.generated)}</p></header><main>"
            f"<section><h2>Vendors by category</h2><table><tr><th>Category</th><th>Submissions</th><th>Software (labelled)</th><th>Vendors</th>"
            + "".join(f"<th>{s.capitalize()}</th>" for s, _ in STATUS_COLUMNS)
            + f"<th></th></tr>{cat_rows}</table><p class='note legend'>{legend}. Each vendor counts once per category, "
            f"at its best status: labelled (a valid label) &gt; revoked &gt; expired &gt; pending (awaiting reviews) &gt; "
            f"refused.</p></section>"
            f"<section><h2>Automated requirements: pass rates across all submissions</h2><table><tr><th>Requirement</th>"
            f"<th>Level</th><th>Evaluated</th><th>Passed</th><th>Failed</th><th>Errors</th><th>Pass rate</th><th></th></tr>"
            f"{req_rows}</table><p class=note>Sorted by failures: the requirements that hurt most come first.</p></section>"
            f"{funnel}</main></body></html>\n")
