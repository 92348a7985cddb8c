"""Model licenses: what hearth knows about them (``catalog.license_terms``), which one an installed model is
under (``resolve``), the team's policy (``policy``), the gate before a pull (``gate``), the
check before a model is used (``enforce``) and the audit of everything installed (``audit``).
The data lives in ``catalog/licenses.toml``."""

from hearth.catalog.license_terms import LicenseTerms, badge, license_summary, lookup
from hearth.licenses.gate import acceptance_prompt, confirm_before_pull
from hearth.licenses.policy import check_policy
from hearth.licenses.resolve import license_id_of, resolve_license

__all__ = [
    "LicenseTerms", "acceptance_prompt", "badge", "check_policy", "confirm_before_pull",
    "license_id_of", "license_summary", "lookup", "resolve_license",
]
