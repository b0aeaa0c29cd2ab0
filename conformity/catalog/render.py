"""Render a wave's consolidated specification, and a wave diff, as text, Markdown or HTML."""

from __future__ import annotations

import datetime as dt
import json
import re
import textwrap
from collections import Counter
from html import escape
from typing import TYPE_CHECKING

from conformity import __version__
from conformity.catalog.diff import WaveDiff
from conformity.catalog.models import AppliedRequirement, Specification

if TYPE_CHECKING:
    from conformity.harness.guide import ActionGuide

FORMATS = ("text", "markdown", "html")
#: referential id → its driver actions with schemas, example and calling scenarios (conformity.harness.guide)
Guides = dict[str, list["ActionGuide"]]


#: what makes Markdown of a text: emphasis, code, links and images, raw HTML and entities, table cells
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~])")
#: what makes a block of a paragraph's start: a heading, a list item, a setext underline
_MD_BLOCK_START = re.compile(r"^(?:[#+=-]|[0-9]+[.)])")


def md_text(text: str) -> str:
    """A text of the catalog (a title, a statement, a reason) as Markdown that shows it as it is: one line (a line
    break would end a table row or start a heading), every character that would make Markdown or HTML escaped."""
    flat = _MD_SPECIAL.sub(r"\\\1", " ".join(text.split()))
    start = _MD_BLOCK_START.match(flat)
    if start is None:
        return flat
    end = start.end()
    return flat[:end - 1] + "\\" + flat[end - 1:]


def _pretty(value: object) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


def guide_text(guides: list[ActionGuide], indent: str = "  ") -> list[str]:
    """The driver actions of one referential as text lines (schemas, example input, scenarios in order)."""
    lines: list[str] = []
    def pad(t: str) -> str:
        return textwrap.indent(t, indent + "    ")

    for g in guides:
        a = g.action
        lines += [f"{indent}Action {a.name}: {a.description}", f"{indent}  input schema:", pad(_pretty(a.input)),
                  f"{indent}  output schema:", pad(_pretty(a.output))]
        if g.example is not None:
            lines += [f"{indent}  example input ({g.example_from}):", pad(_pretty(g.example))]
        lines.append(f"{indent}  called by {len(g.scenarios)} scenario(s), steps in order:")
        for sc in g.scenarios:
            login = f" [{sc.login_note}]" if sc.login_note else ""
            lines.append(f"{indent}    {sc.id} — {sc.title}{login}")
            lines += [f"{indent}      {i}. {step}" for i, step in enumerate(sc.steps, start=1)]
        lines.append("")
    return lines


def conventions(spec: Specification) -> tuple[tuple[str, str], ...]:
    """The driver conventions of the specification's wave: the protocol's, then its pack's."""
    from conformity.harness.guide import conventions

    return conventions(spec.wave.pack)


def _summary(spec: Specification) -> dict[str, int]:
    c: Counter[str] = Counter()
    for a in spec.requirements:
        c[a.level] += 1
        c[a.requirement.proof.method] += 1
    c["total"] = len(spec.requirements)
    return c


def _proof_text(a: AppliedRequirement) -> str:
    p = a.requirement.proof
    if p.method == "automated":
        return "Automated check(s): " + ", ".join(p.checks)
    return f"{p.method.capitalize()}: {p.evidence}"


def _funding_lines(spec: Specification) -> list[str]:
    f, cat = spec.wave.funding, spec.category
    prices = ", ".join(f"{size} {amount:,} €".replace(",", " ") for size, amount in f.prices.get(cat, {}).items())
    return [
        f"Price per installation: {prices}",
        f"Cap per software: {f.cap_per_software:,} €".replace(",", " "),
        f"Funding window: {f.window_start} to {f.window_end}",
        f"Proof of use: {f.proof_of_use(cat).describe()}",
    ]


def spec_text(spec: Specification, guides: Guides | None = None) -> str:
    w, s = spec.wave, _summary(spec)
    def wrap(t: str, ind: str = "    ") -> str:
        return textwrap.fill(t, 100, initial_indent=ind, subsequent_indent=ind)

    lines = [
        f"{w.title} ({w.id}) — category {spec.category}: {spec.category_title}",
        f"Open {w.open}, submissions until {w.submission_deadline}, labels valid until {w.label_valid_until}",
        "Referentials: " + ", ".join(f"{r.id} {r.version}" for r in spec.referentials),
        f"{s['total']} requirements: {s['MUST']} MUST, {s['SHOULD']} SHOULD; "
        f"{s['automated']} automated, {s['document']} document, {s['manual']} manual",
        "",
    ]
    for ref, reqs in spec.by_referential():
        lines += [f"== {ref.id} {ref.version} — {ref.title} ({len(reqs)} requirements)", ""]
        for a in reqs:
            r = a.requirement
            promoted = " (promoted from SHOULD in this wave)" if a.promoted else ""
            lines.append(f"  {r.id} [{a.level}{promoted}] [{r.kind}] {r.title}")
            lines.append(wrap(r.statement))
            lines.append(wrap("Proof — " + _proof_text(a)))
            lines.append("")
        if guides and guides.get(ref.id):
            lines += [f"-- {ref.id}: driver actions", ""] + guide_text(guides[ref.id])
    if spec.excluded:
        lines += ["== Not required in this wave for this category", ""]
        lines += [f"  {rid}: {reason}" for rid, reason in spec.excluded.items()] + [""]
    if spec.actions:
        lines += ["== Driver actions your software must support", ""]
        lines += [f"  {a.name} ({a.referential}): {a.description}" for a in spec.actions] + [""]
        lines += ["== Driver conventions", ""]
        for title, text in conventions(spec):
            lines += [wrap(f"{title}: {text}", "  "), ""]
    lines += ["== Funding", ""] + [f"  {x}" for x in _funding_lines(spec)]
    return "\n".join(lines) + "\n"


def spec_markdown(spec: Specification, guides: Guides | None = None) -> str:
    w, s = spec.wave, _summary(spec)
    def md(t: str) -> str:  # usine's own texts (scenarios, conventions): Markdown on purpose, but one table cell
        return t.replace("|", "\\|")
    m = md_text

    lines = [
        f"# {m(w.title)} — {m(spec.category_title)} ({spec.category})", "",
        f"Wave `{w.id}`: open {w.open}, submissions until {w.submission_deadline}, "
        f"labels valid until {w.label_valid_until}.", "",
        f"**{s['total']} requirements**: {s['MUST']} MUST, {s['SHOULD']} SHOULD; "
        f"{s['automated']} proven by automated checks, {s['document']} by document, {s['manual']} by manual review.", "",
        "| Referential | Version | Title | Requirements |", "|---|---|---|---|",
    ]
    for ref, reqs in spec.by_referential():
        lines.append(f"| {ref.id} | {ref.version} | {m(ref.title)} | {len(reqs)} |")
    lines.append("")
    for ref, reqs in spec.by_referential():
        lines += [f"## {ref.id} {ref.version} — {m(ref.title)}", ""]
        if ref.summary:
            lines += [m(ref.summary), ""]
        for a in reqs:
            r = a.requirement
            promoted = " *(promoted from SHOULD in this wave)*" if a.promoted else ""
            lines += [f"### {r.id} — {m(r.title)}", "",
                      f"**{a.level}**{promoted} · {r.kind}", "", m(r.statement), "", f"*Proof:* {m(_proof_text(a))}", ""]
        for g in (guides or {}).get(ref.id, []):
            act = g.action
            lines += [f"### Driver action `{act.name}`", "", m(act.description), "", "Input schema:", "", "```json",
                      _pretty(act.input), "```", "", "Output schema:", "", "```json", _pretty(act.output), "```", ""]
            if g.example is not None:
                lines += [f"Example input ({m(g.example_from)}):", "", "```json", _pretty(g.example), "```", ""]
            lines += ["Called by (steps in order):", ""]
            for sc in g.scenarios:
                login = f" — *{md(sc.login_note)}*" if sc.login_note else ""
                lines.append(f"- `{sc.id}` {md(sc.title)}{login}: " + "; ".join(f"{i}. {md(x)}" for i, x in
                                                                                 enumerate(sc.steps, start=1)))
            lines.append("")
    if spec.excluded:
        lines += ["## Not required in this wave for this category", ""]
        lines += [f"- **{rid}**: {m(reason)}" for rid, reason in spec.excluded.items()] + [""]
    if spec.actions:
        lines += ["## Driver actions", "", "| Action | Referential | Description |", "|---|---|---|"]
        lines += [f"| `{a.name}` | {a.referential} | {m(a.description)} |" for a in spec.actions] + [""]
        lines += ["## Driver conventions", ""] + [f"- **{t}**: {x}" for t, x in conventions(spec)] + [""]
    lines += ["## Funding", ""] + [f"- {x}" for x in _funding_lines(spec)] + [""]
    return "\n".join(lines)


_CSS = """
body{font:15px/1.5 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;color:#1d2433;background:#f6f7f9}
header{background:#000091;color:#fff;padding:24px 40px}header h1{margin:0 0 6px;font-size:26px}
header p{margin:2px 0;opacity:.9}main{display:flex;gap:32px;padding:24px 40px;max-width:1300px}
nav{flex:0 0 240px;position:sticky;top:16px;align-self:flex-start;font-size:14px}
nav a{display:block;color:#000091;text-decoration:none;padding:3px 0}nav a:hover{text-decoration:underline}
article{flex:1;min-width:0}section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:18px 24px;margin-bottom:22px}
h2{margin-top:0;font-size:20px}.req{border-top:1px solid #eceef2;padding:12px 0}.req:first-of-type{border-top:0}
.req h3{font-size:16px;margin:0 0 6px}.req h3 code{color:#000091;margin-right:6px}
.badge{display:inline-block;font-size:12px;font-weight:600;border-radius:3px;padding:1px 7px;margin-right:6px}
.MUST{background:#fde2e1;color:#8a1c14}.SHOULD{background:#fff3d6;color:#7a5300}.kind{background:#e8edff;color:#000091}
.automated{background:#dff5e6;color:#18753c}.document,.manual{background:#eee;color:#333}
.proof{font-size:14px;color:#444}.stats{display:flex;gap:14px;flex-wrap:wrap}.stat{background:#fff;border:1px solid #dde1e8;
border-radius:6px;padding:10px 16px}.stat b{display:block;font-size:22px}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #eceef2;padding:6px 8px;text-align:left;vertical-align:top}pre{background:#f3f4f7;padding:8px;
overflow:auto;font-size:12px}footer{color:#666;font-size:13px;padding:0 40px 30px}
"""


def _guide_html(guides: list[ActionGuide]) -> str:
    e = escape
    out = []
    for g in guides:
        a = g.action
        out.append(f'<div class="action" id="action-{e(a.name)}"><h3>Driver action <code>{e(a.name)}</code></h3>'
                   f"<p>{e(a.description)}</p><p><b>Input schema</b></p><pre>{e(_pretty(a.input))}</pre>"
                   f"<p><b>Output schema</b></p><pre>{e(_pretty(a.output))}</pre>")
        if g.example is not None:
            out.append(f"<p><b>Example input</b> ({e(g.example_from)})</p><pre>{e(_pretty(g.example))}</pre>")
        out.append("<p><b>Called by</b> (steps in order)</p><ul>")
        for sc in g.scenarios:
            login = f" <em>— {e(sc.login_note)}</em>" if sc.login_note else ""
            steps = "".join(f"<li>{e(x)}</li>" for x in sc.steps)
            out.append(f"<li><code>{e(sc.id)}</code> {e(sc.title)}{login}<ol>{steps}</ol></li>")
        out.append("</ul></div>")
    return "".join(out)


def spec_html(spec: Specification, guides: Guides | None = None) -> str:
    w, s = spec.wave, _summary(spec)
    e = escape
    nav = ['<a href="#summary">Summary</a>']
    body = [f'<section id="summary"><h2>Summary</h2><div class="stats">'
            f'<div class="stat"><b>{s["total"]}</b>requirements</div><div class="stat"><b>{s["MUST"]}</b>MUST</div>'
            f'<div class="stat"><b>{s["SHOULD"]}</b>SHOULD</div><div class="stat"><b>{s["automated"]}</b>automated</div>'
            f'<div class="stat"><b>{s["document"] + s["manual"]}</b>document / manual</div></div>'
            '<h3>Pinned referentials</h3><table><tr><th>Referential</th><th>Version</th><th>Title</th>'
            '<th>Owner</th><th>Requirements</th></tr>']
    for ref, reqs in spec.by_referential():
        body.append(f'<tr><td><a href="#{e(ref.id)}">{e(ref.id)}</a></td><td>{e(ref.version)}</td><td>{e(ref.title)}</td>'
                    f'<td>{e(ref.owner)}</td><td>{len(reqs)}</td></tr>')
    body.append("</table></section>")
    for ref, reqs in spec.by_referential():
        nav.append(f'<a href="#{e(ref.id)}">{e(ref.id)} {e(ref.version)} ({len(reqs)})</a>')
        body.append(f'<section id="{e(ref.id)}"><h2>{e(ref.id)} {e(ref.version)} — {e(ref.title)}</h2>')
        if ref.summary:
            body.append(f"<p>{e(ref.summary)}</p>")
        for a in reqs:
            r = a.requirement
            promoted = ' <span class="badge SHOULD">promoted from SHOULD</span>' if a.promoted else ""
            proof = r.proof
            proof_html = (", ".join(f"<code>{e(c)}</code>" for c in proof.checks) if proof.method == "automated"
                          else e(proof.evidence))
            body.append(
                f'<div class="req" id="{e(r.id)}"><h3><code>{e(r.id)}</code>{e(r.title)}</h3>'
                f'<span class="badge {a.level}">{a.level}</span>{promoted}<span class="badge kind">{e(r.kind)}</span>'
                f'<span class="badge {proof.method}">{proof.method}</span><p>{e(r.statement)}</p>'
                f'<p class="proof"><b>Proof:</b> {proof_html}</p></div>')
        if guides and guides.get(ref.id):
            body.append(_guide_html(guides[ref.id]))
        body.append("</section>")
    if spec.excluded:
        nav.append('<a href="#excluded">Not required</a>')
        body.append('<section id="excluded"><h2>Not required in this wave for this category</h2><table>')
        body += [f"<tr><td><code>{e(rid)}</code></td><td>{e(reason)}</td></tr>" for rid, reason in spec.excluded.items()]
        body.append("</table></section>")
    if spec.actions:
        nav.append('<a href="#actions">Driver actions</a>')
        body.append('<section id="actions"><h2>Driver actions your software must support</h2>'
                    "<p>The harness asks your driver to perform these (JSON-RPC <code>perform</code>); "
                    "inputs and outputs are validated against these schemas.</p>")
        for act in spec.actions:
            body.append(f"<h3><code>{e(act.name)}</code> <small>({e(act.referential)})</small></h3><p>{e(act.description)}</p>"
                        f"<details><summary>Input and output schemas</summary><pre>{e(json.dumps(act.input, indent=2))}</pre>"
                        f"<pre>{e(json.dumps(act.output, indent=2))}</pre></details>")
        body.append("<h3>Conventions</h3><dl>" + "".join(f"<dt><b>{e(t)}</b></dt><dd>{e(x)}</dd>" for t, x in conventions(spec))
                    + "</dl></section>")
    nav.append('<a href="#funding">Funding</a>')
    body.append('<section id="funding"><h2>Funding</h2><ul>' + "".join(f"<li>{e(x)}</li>" for x in _funding_lines(spec))
                + "</ul></section>")
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{e(w.title)} — {e(spec.category)}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>'
        f"<header><h1>{e(w.title)} — {e(spec.category_title)} ({e(spec.category)})</h1>"
        f"<p>Wave {e(w.id)} · open {w.open} · submissions until {w.submission_deadline} · "
        f"labels valid until {w.label_valid_until}</p><p>{e(w.description)}</p></header>"
        f'<main><nav>{"".join(nav)}</nav><article>{"".join(body)}</article></main>'
        f"<footer>Consolidated specification generated by usine {__version__} on {dt.date.today()} "
        f"from the catalog's pinned referential versions.</footer></body></html>\n"
    )


def render_spec(spec: Specification, fmt: str, guides: Guides | None = None) -> str:
    """The specification in ``fmt``; with ``guides``, each referential's driver actions (schemas, example, scenarios)."""
    return {"text": spec_text, "markdown": spec_markdown, "html": spec_html}[fmt](spec, guides)


def diff_text(d: WaveDiff, markdown: bool = False) -> str:
    def h(t: str) -> str:
        return f"## {t}" if markdown else f"== {t}"

    item = "- " if markdown else "  "

    def m(t: str) -> str:  # a text of the catalog: as it is in Markdown too
        return md_text(t) if markdown else t
    lines = [f"{'# ' if markdown else ''}Changes from {d.wave_a} to {d.wave_b}", ""]
    for c in d.categories:
        if c.status != "both":
            lines += [h(f"{c.category}: category {c.status} in {d.wave_b}"), ""]  # added or removed: by wave_b
        else:
            lines += [h(f"{c.category}: {len(c.added)} added, {len(c.removed)} removed, {len(c.changed)} changed"), ""]
        if c.empty:
            lines += [f"{item}no change", ""]
            continue
        for rid, before, after in c.pinned:
            lines.append(f"{item}referential {rid}: {before or '—'} → {after or '—'}")
        for a in c.added:
            lines.append(f"{item}+ {a.id} [{a.level}] {m(a.requirement.title)}")
        for a in c.removed:
            lines.append(f"{item}- {a.id} [{a.level}] {m(a.requirement.title)}")
        for ch in c.changed:
            lines.append(f"{item}~ {ch.id} {m(ch.after.requirement.title)}")
            for f in ch.fields:
                if f.name == "statement":
                    lines.append(f"{'  ' if markdown else '      '}{item}statement changed:")
                    lines.append(f"{'  ' if markdown else '      '}    before: {m(f.before)}")
                    lines.append(f"{'  ' if markdown else '      '}    after:  {m(f.after)}")
                else:
                    lines.append(f"{'  ' if markdown else '      '}{item}{f.name}: {m(f.before)} → {m(f.after)}")
        for f in c.funding:
            lines.append(f"{item}funding {f.name}: {f.before} → {f.after}")
        lines.append("")
    return "\n".join(lines) + "\n"
