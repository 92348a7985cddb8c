"""Registry logins: the user name and password ``docker login HOST`` stored.

hearth keeps no passwords of its own. It reads Docker's client configuration
(``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``), where ``docker login`` (and
``podman login --compat-auth-file``, or a person with a text editor) writes
``{"auths": {"HOST": {"auth": base64("user:password")}}}``. Credential helpers (``credsStore``,
``credHelpers``) keep the password elsewhere and are not read.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path


def docker_config_path() -> Path:
    folder = os.environ.get("DOCKER_CONFIG")
    return (Path(folder) if folder else Path.home() / ".docker") / "config.json"


def _auth_entry(auths: dict, host: str) -> dict | None:
    # docker writes the bare host; older clients and some tools a URL with a scheme or /v1/.
    for key in (host, f"https://{host}", f"http://{host}", f"https://{host}/v1/", f"https://{host}/v2/"):
        entry = auths.get(key)
        if isinstance(entry, dict):
            return entry
    return None


def basic_credentials(host: str) -> str | None:
    """The base64 ``user:password`` for ``host`` (``localhost:5000``, ``ghcr.io``), or None."""
    try:
        data = json.loads(docker_config_path().read_text("utf-8"))
    except (OSError, ValueError):
        return None
    auths = data.get("auths") if isinstance(data, dict) else None
    entry = _auth_entry(auths, host) if isinstance(auths, dict) else None
    if entry is None:
        return None
    encoded = entry.get("auth")
    if isinstance(encoded, str) and encoded:
        try:
            decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return encoded if ":" in decoded else None
    user, password = entry.get("username"), entry.get("password")
    if isinstance(user, str) and isinstance(password, str) and user:
        return base64.b64encode(f"{user}:{password}".encode()).decode()
    return None


def login_hint(host: str) -> str:
    return (f"log in with 'docker login {host}' (hearth reads the credentials it stores in "
            f"{docker_config_path()})")
