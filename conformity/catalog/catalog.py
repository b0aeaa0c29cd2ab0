"""The loaded catalog: look-ups and the consolidated specification of a wave for a category."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from conformity.catalog.models import AppliedRequirement, Pack, Referential, Specification, Wave
from conformity.errors import InputError


def version_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def parse_ref(text: str) -> tuple[str, str | None]:
    """``REF@2.0`` → ("REF", "2.0"); ``REF`` → ("REF", None)."""
    rid, _, version = text.partition("@")
    return rid, (version or None)


@dataclass(frozen=True, slots=True)
class Catalog:
    """Every pack, referential version and wave, loaded and cross-checked."""

    root: Path
    packs: dict[str, Pack]
    referentials: dict[tuple[str, str], Referential]
    waves: dict[str, Wave]

    def versions(self, rid: str) -> list[str]:
        return sorted((v for (i, v) in self.referentials if i == rid), key=version_key)

    def referential(self, rid: str, version: str | None = None) -> Referential:
        """A referential version (the latest when ``version`` is None)."""
        versions = self.versions(rid)
        if not versions:
            known = ", ".join(sorted({i for i, _ in self.referentials}))
            raise InputError(f"unknown referential {rid!r} (known: {known})", where="referential")
        if version is None:
            version = versions[-1]
        if (rid, version) not in self.referentials:
            raise InputError(f"referential {rid} has no version {version!r} (versions: {', '.join(versions)})",
                             where="version")
        return self.referentials[(rid, version)]

    def wave(self, wave_id: str) -> Wave:
        if wave_id not in self.waves:
            raise InputError(f"unknown wave {wave_id!r} (known: {', '.join(sorted(self.waves)) or 'none'})",
                             where="wave")
        return self.waves[wave_id]

    def check_ids(self) -> dict[str, list[str]]:
        """Every check id named by a requirement → the versioned requirement refs naming it."""
        out: dict[str, list[str]] = {}
        for ref in self.referentials.values():
            for req in ref.requirements:
                for check in req.proof.checks:
                    out.setdefault(check, []).append(req.ref)
        return out

    def specification(self, wave_id: str, category: str) -> Specification:
        """The ONE consolidated specification of a wave for a category."""
        wave = self.wave(wave_id)
        if category not in wave.categories:
            raise InputError(f"wave {wave_id} has no category {category!r} "
                             f"(categories: {', '.join(wave.categories)})", where="category")
        wc = wave.categories[category]
        refs = tuple(self.referentials[(rid, v)] for rid, v in wc.referentials.items())
        if wc.selection == "applicable":
            chosen = [r for ref in refs for r in ref.requirements if category in r.categories]
        else:
            index = {r.id: r for ref in refs for r in ref.requirements}
            chosen = [index[i] for i in wc.selection]
        applied = tuple(
            AppliedRequirement(r, "MUST" if r.id in wc.promote else r.level)
            for r in chosen if r.id not in wc.exclude
        )
        pack = self.packs[wave.pack]
        return Specification(wave=wave, category=category, category_title=pack.categories.get(category, category),
                             referentials=refs, requirements=applied, excluded=dict(wc.exclude))
