"""The license gate a pull passes before anything is downloaded."""

from __future__ import annotations

from collections.abc import Callable

from hearth.catalog.license_terms import lookup
from hearth.errors import LicenseNotAccepted
from hearth.licenses.policy import check_policy


def acceptance_prompt(name: str, license_id: str | None) -> str:
    """What a user is asked before pulling a model whose license needs accepting."""
    terms = lookup(license_id)
    if terms is None:
        shown = license_id or "no license stated"
        return (f"'{name}' is under a license hearth does not know ({shown}); read its terms "
                "before using it. Accept the license and pull?")
    lines = [f"'{name}' is under the {terms.name} ({terms.id}); commercial use: {terms.commercial_use}."]
    lines += [f"  - {item}" for item in terms.restrictions]
    if terms.url:
        lines.append(f"  Full text: {terms.url}")
    lines.append("Accept the license and pull?")
    return "\n".join(lines)


def confirm_before_pull(name: str, license_id: str | None, *, accept_license: bool,
                        ask: Callable[[str], bool] | None) -> None:
    """Check the license policy, then, for a license that is not OSI-approved (or unknown),
    require ``accept_license`` or a yes from ``ask(prompt)``; otherwise LicenseNotAccepted."""
    check_policy(license_id, action="pull", model=name)
    terms = lookup(license_id)
    if terms is not None and not terms.needs_acceptance:
        return
    if accept_license:
        return
    if ask is not None and ask(acceptance_prompt(name, license_id)):
        return
    shown = terms.id if terms else (license_id or "an unstated license")
    where = f" (terms: {terms.url})" if terms is not None and terms.url else ""
    raise LicenseNotAccepted(f"'{name}' is under {shown}{where}, which must be accepted before "
                             "pulling; pull again with --accept-license to accept it",
                             license_id=license_id, reason="license not accepted")
