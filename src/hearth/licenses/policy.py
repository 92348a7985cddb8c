"""The license policy (HEARTH_LICENSE_POLICY): which licenses may be pulled, run and served.

The file is TOML with any of these keys::

    allowed = ["Apache-2.0", "MIT"]   # only these pass (any spelling the knowledge base knows)
    denied = ["CC-BY-NC-4.0"]         # these never pass; denied wins over allowed
    commercial = true                 # only licenses that allow commercial use pass
    allow_conditional = true          # with commercial: accept "conditional" commercial use
                                      # (Llama, Gemma, Qwen); false demands plain "yes"

An unknown license (none stated, or one the knowledge base does not know) fails an allow list
(unless that very id is listed) and fails `commercial`, with the reason "unknown license". A
file that is missing or malformed is an error for every check: a broken policy never lets
everything through.
"""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from hearth import config
from hearth.catalog.license_terms import alias_key, lookup
from hearth.errors import LicenseBlocked, LicensePolicyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

KEYS = {"allowed", "denied", "commercial", "allow_conditional"}
ACTION_WORDS = {"pull": "pulling", "run": "running", "serve": "serving"}


@dataclass(frozen=True)
class LicensePolicy:
    path: str
    allowed: tuple[str, ...] | None = None
    denied: tuple[str, ...] = ()
    commercial: bool = False
    allow_conditional: bool = True
    # Ids in allowed/denied that the knowledge base does not know: often a typo, which in
    # `denied` would quietly let that license through. Shown as a warning, not refused: a team
    # may list its own license ids.
    unrecognised: tuple[str, ...] = ()

    def violation(self, license_id: str | None) -> str | None:
        """Why ``license_id`` fails this policy, or None when it passes."""
        terms = lookup(license_id)
        key = _policy_key(license_id) if license_id else None
        shown = terms.id if terms else (license_id or "none stated")
        if key is not None and key in self.denied:
            return f"license {shown} is denied by the policy"
        if self.allowed is not None and (key is None or key not in self.allowed):
            if terms is None:
                return "unknown license"
            return f"license {shown} is not in the policy's allowed list"
        if self.commercial:
            return commercial_problem(license_id, allow_conditional=self.allow_conditional)
        return None


def commercial_problem(license_id: str | None, *, allow_conditional: bool = True) -> str | None:
    """Why ``license_id`` does not allow commercial use, or None when it does."""
    terms = lookup(license_id)
    if terms is None:
        return "unknown license"
    if terms.commercial_use == "no":
        return f"license {terms.id} does not allow commercial use"
    if terms.commercial_use == "conditional" and not allow_conditional:
        return f"license {terms.id} allows commercial use only with conditions"
    return None


def _policy_key(license_id: str) -> str:
    terms = lookup(license_id)
    return alias_key(terms.id if terms else license_id)


def _ids(path: Path, data: dict, key: str) -> tuple[str, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise LicensePolicyError(f"license policy {path}: '{key}' must be a list of license ids")
    return tuple(_policy_key(item) for item in value)


def _flag(path: Path, data: dict, key: str, default: bool) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise LicensePolicyError(f"license policy {path}: '{key}' must be true or false")
    return value


@functools.lru_cache(maxsize=8)
def _read(path_text: str, mtime_ns: int, size: int) -> LicensePolicy:
    path = Path(path_text)
    try:
        data = tomllib.loads(path.read_text("utf-8"))
    except OSError as exc:
        raise LicensePolicyError(f"cannot read license policy {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise LicensePolicyError(f"license policy {path} is not valid TOML: {exc}") from exc
    unknown = sorted(set(data) - KEYS)
    if unknown:
        raise LicensePolicyError(f"license policy {path}: unknown key(s) {', '.join(unknown)}; "
                                 f"use {', '.join(sorted(KEYS))}")
    return LicensePolicy(
        path=str(path),
        allowed=_ids(path, data, "allowed"),
        denied=_ids(path, data, "denied") or (),
        commercial=_flag(path, data, "commercial", False),
        allow_conditional=_flag(path, data, "allow_conditional", True),
        unrecognised=tuple(item for key in ("allowed", "denied") for item in data.get(key) or []
                           if lookup(item) is None),
    )


def unrecognised_warning(policy: LicensePolicy | None) -> str | None:
    if policy is None or not policy.unrecognised:
        return None
    return (f"license policy {policy.path} names license ids hearth does not know: "
            f"{', '.join(policy.unrecognised)} (a typo? see 'hearth license ID' for known spellings)")


def current_policy() -> LicensePolicy | None:
    """The policy HEARTH_LICENSE_POLICY names (re-read when the file changes), or None."""
    path = config.license_policy_path()
    if path is None:
        return None
    try:
        stat = path.stat()
    except OSError as exc:
        raise LicensePolicyError(f"license policy {path} (HEARTH_LICENSE_POLICY) cannot be read: "
                                 f"{exc.strerror}") from exc
    if not path.is_file():
        raise LicensePolicyError(f"license policy {path} (HEARTH_LICENSE_POLICY) is not a file")
    return _read(str(path), stat.st_mtime_ns, stat.st_size)


def blocked(license_id: str | None, reason: str, *, action: str, model: str | None,
            where: str) -> LicenseBlocked:
    doing = ACTION_WORDS.get(action, action)
    subject = f"'{model}'" if model else "this model"
    shown = (lookup(license_id).id if lookup(license_id) else license_id) or "no license stated"
    return LicenseBlocked(f"{doing} {subject} ({shown}) is blocked by {where}: {reason}",
                          license_id=license_id, reason=reason)


def check_policy(license_id: str | None, *, action: str, model: str | None = None) -> None:
    """Raise LicenseBlocked with the reason when the license policy forbids ``action``
    ("pull", "run" or "serve") for a model under ``license_id``; nothing without a policy."""
    policy = current_policy()
    if policy is None:
        return
    reason = policy.violation(license_id)
    if reason is not None:
        raise blocked(license_id, reason, action=action, model=model,
                      where=f"the license policy {policy.path}")
