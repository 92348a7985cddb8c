"""Which remote providers exist: the presets, merged with HEARTH_HOME/providers.toml.

```toml
[providers.mybox]                      # the name used in "mybox/MODEL"
base_url = "http://127.0.0.1:8080/v1"  # an OpenAI-compatible API
api_key_env = "MYBOX_API_KEY"          # optional: where the key is
api_key = "..."                        # optional: the key itself (keep the file private)
models = ["smollm2", "qwen*"]          # optional allow-list (patterns)
```

A table named like a preset (``[providers.groq]``) changes only the fields it sets. The file is
read again when it changes, so a running server sees edits. Keys are read at call time, from
the environment first, and are never part of a repr or a message.
"""

from __future__ import annotations

import fnmatch
import functools
import os
import re
import sys
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hearth import config
from hearth.errors import HearthError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
ENV_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
# The provider's own model id: never a path here, but it goes into JSON and URLs verbatim.
MODEL_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}$")
# Names that would shadow local models: the default namespace and host-like words.
RESERVED = frozenset({"library", "localhost", "hearth", "local"})
STRUCTURED_STYLES = ("json_schema", "json_object")
FIELDS = {"description", "base_url", "api_key_env", "api_key", "models", "timeout",
          "max_concurrency", "stream_usage", "structured_output"}


@dataclass(frozen=True)
class Provider:
    name: str
    base_url: str
    description: str = ""
    api_key_env: str = ""
    api_key: str = field(default="", repr=False)
    models: tuple[str, ...] = ()
    timeout: float | None = None
    max_concurrency: int | None = None
    # Ask for token usage in the last streamed chunk (stream_options.include_usage).
    stream_usage: bool = True
    # How a JSON schema is asked for: OpenAI's response_format "json_schema", or
    # "json_object" with a "schema" beside it (llama-cpp-python's server).
    structured_output: str = "json_schema"
    preset: bool = False

    def key(self) -> str:
        """The API key, from the environment first, then providers.toml; "" when none."""
        if self.api_key_env:
            value = os.environ.get(self.api_key_env, "").strip()
            if value:
                return value
        return self.api_key.strip()

    @property
    def needs_key(self) -> bool:
        # Presets are hosted services; a custom provider needs one only if it names one.
        return self.preset or bool(self.api_key_env) or bool(self.api_key)

    @property
    def key_source(self) -> str:
        return self.api_key_env or ("providers.toml" if self.api_key else "")

    @property
    def endpoint(self) -> str:
        """The base URL as it may be shown: no user:password, query or fragment."""
        parts = urlsplit(self.base_url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = f":{parts.port}" if parts.port else ""
        return f"{parts.scheme}://{host}{port}{parts.path}".rstrip("/")

    @property
    def host(self) -> str:
        return urlsplit(self.base_url).hostname or ""

    def allows(self, model_id: str) -> bool:
        if not self.models:
            return True
        lowered = model_id.lower()
        return any(fnmatch.fnmatchcase(lowered, pattern.lower()) for pattern in self.models)

    def timeout_seconds(self) -> float:
        return float(self.timeout) if self.timeout else float(config.provider_timeout())

    def concurrency(self) -> int:
        return self.max_concurrency or config.provider_concurrency()


@dataclass(frozen=True)
class RemoteTarget:
    """A remote model: which provider, and the provider's own id for it."""

    provider: Provider
    model: str

    @property
    def name(self) -> str:
        return f"{self.provider.name}/{self.model}"


def _problem(source: str, message: str) -> HearthError:
    return HearthError(f"{source}: {message}")


def _provider(name: str, data: dict[str, Any], source: str, base: Provider | None,
              table: str = "providers.") -> Provider:
    where = f"{source} [{table}{name}]"
    if not NAME_RE.fullmatch(name) or name in RESERVED:
        raise _problem(source, f"provider name '{name}' must be lower-case letters, digits, '-' "
                               "or '_' (and not library, localhost, hearth or local)")
    unknown = sorted(set(data) - FIELDS)
    if unknown:
        raise _problem(where, f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(FIELDS))}")
    values: dict[str, Any] = {}
    for key in ("description", "base_url", "api_key_env", "api_key", "structured_output"):
        if key in data:
            if not isinstance(data[key], str):
                raise _problem(where, f"{key} must be a string")
            values[key] = data[key].strip()
    if "api_key_env" in values and values["api_key_env"] and not ENV_RE.fullmatch(values["api_key_env"]):
        # Never echo it: a key pasted here by mistake must not end up in a message.
        raise _problem(where, "api_key_env must name an environment variable (like GROQ_API_KEY), "
                              "not hold the key itself")
    if "models" in data:
        models = data["models"]
        if not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models):
            raise _problem(where, "models must be a list of model ids")
        values["models"] = tuple(m.strip() for m in models)
    for key, kind in (("timeout", (int, float)), ("max_concurrency", int), ("stream_usage", bool)):
        if key in data:
            value = data[key]
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
                raise _problem(where, f"{key} has the wrong type")
            if kind is not bool and value <= 0:
                raise _problem(where, f"{key} must be positive")
            values[key] = value
    if values.get("structured_output", "json_schema") not in STRUCTURED_STYLES:
        raise _problem(where, f"structured_output must be one of {', '.join(STRUCTURED_STYLES)}")
    merged = replace(base, **values) if base else Provider(name=name, base_url=values.pop("base_url", ""),
                                                            **values)
    _check_url(merged.base_url, where)
    return merged


def _check_url(url: str, where: str) -> None:
    if not url:
        raise _problem(where, "base_url is required")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _problem(where, "base_url must be an http:// or https:// URL")
    try:
        parts.port  # noqa: B018 - raises on a port out of range
    except ValueError:
        raise _problem(where, "base_url has an invalid port") from None


@functools.lru_cache(maxsize=1)
def presets() -> dict[str, Provider]:
    text = resources.files("hearth.providers").joinpath("presets.toml").read_text("utf-8")
    found = {}
    for name, data in tomllib.loads(text).items():
        found[name] = replace(_provider(name, data, "presets.toml", None, table=""), preset=True)
    return found


@functools.lru_cache(maxsize=8)
def _read_file(path: str, mtime_ns: int, size: int) -> dict[str, Provider]:
    source = path
    try:
        data = tomllib.loads(Path(path).read_text("utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise _problem(source, f"cannot be read: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _problem(source, f"is not valid TOML: {exc}") from None
    unknown = sorted(set(data) - {"providers"})
    if unknown:
        raise _problem(source, f"unknown table(s) {', '.join(unknown)}; declare providers as [providers.NAME]")
    tables = data.get("providers", {})
    if not isinstance(tables, dict):
        raise _problem(source, "providers must be a table of [providers.NAME] tables")
    found: dict[str, Provider] = {}
    for raw_name, table in tables.items():
        if not isinstance(table, dict):
            raise _problem(source, f"providers.{raw_name} must be a table")
        name = raw_name.lower()
        found[name] = _provider(name, table, source, presets().get(name))
    return found


def load_providers() -> dict[str, Provider]:
    """Every provider by name: presets, changed or joined by providers.toml."""
    providers = dict(presets())
    path = config.providers_file()
    try:
        stat = path.stat()
    except OSError:
        return providers
    providers.update(_read_file(str(path), stat.st_mtime_ns, stat.st_size))
    return providers


def find_provider(name: str) -> Provider | None:
    return load_providers().get(name.strip().lower())


def split_remote(text: str) -> tuple[str, str] | None:
    """``("groq", "llama-3.3-70b-versatile")`` when the first part of ``text`` could be a
    provider name; says nothing about whether that provider exists."""
    if not isinstance(text, str) or "/" not in text:
        return None
    head, rest = text.strip().split("/", 1)
    head = head.lower()
    if not NAME_RE.fullmatch(head) or head in RESERVED or not rest:
        return None
    return head, rest


def resolve(text: str) -> RemoteTarget | None:
    """The remote model ``text`` names, or None when it names a local model.

    Only a first part that is a known provider makes a name remote, so ``groq/x`` goes to
    Groq while ``hearth.local/groq/x`` (and any name without a provider in front) stays local.
    """
    split = split_remote(text)
    if split is None:
        return None
    provider = find_provider(split[0])
    if provider is None:
        return None
    model = split[1]
    if not MODEL_ID_RE.fullmatch(model) or "//" in model:
        from hearth.errors import InvalidModelName

        raise InvalidModelName(f"invalid remote model name '{text}': use PROVIDER/MODEL with the "
                               "provider's model id (letters, digits and . _ : / @ + -)")
    return RemoteTarget(provider, model)
