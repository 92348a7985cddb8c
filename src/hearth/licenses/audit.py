"""``hearth license audit``: every installed model checked against the license policy (and,
with ``commercial``, against the rule that its license must allow commercial use)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from hearth.catalog.license_terms import lookup
from hearth.licenses.policy import commercial_problem, current_policy
from hearth.licenses.resolve import resolve_license

if TYPE_CHECKING:
    from hearth.store import ModelStore


@dataclass(frozen=True)
class AuditRow:
    model: str
    license: str | None
    known: bool
    origin: str
    verdict: str  # "ok", "violation" or "unknown" (unknown license, nothing required of it)
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def audit_models(store: ModelStore, *, commercial: bool = False) -> list[AuditRow]:
    """One row per installed model, sorted by name. Raises LicensePolicyError for a broken
    policy file: an audit against a policy nobody can read would prove nothing."""
    policy = current_policy()
    rows = []
    for model in sorted(store.list(), key=lambda m: m.name.short):
        resolved = resolve_license(store, model)
        terms = lookup(resolved.license_id)
        problems = []
        if policy is not None:
            reason = policy.violation(resolved.license_id)
            if reason:
                problems.append(reason)
        if commercial:
            reason = commercial_problem(resolved.license_id)
            if reason and reason not in problems:
                problems.append(reason)
        if problems:
            verdict, reason_text = "violation", "; ".join(problems)
        elif terms is None:
            verdict, reason_text = "unknown", "unknown license"
        else:
            verdict = "ok"
            reason_text = ("commercial use allowed with conditions"
                           if commercial and terms.commercial_use == "conditional" else "")
        rows.append(AuditRow(model=model.name.short, license=terms.id if terms else resolved.license_id,
                             known=terms is not None, origin=resolved.origin, verdict=verdict,
                             reason=reason_text))
    return rows


def non_compliant(store: ModelStore) -> list[AuditRow]:
    """Installed models the current policy forbids (empty without a policy)."""
    if current_policy() is None:
        return []
    return [row for row in audit_models(store) if row.verdict == "violation"]
