"""Every setting hearth reads, one function each, read at call time.

Settings come from HEARTH_* environment variables. Each is declared once in ``SETTINGS`` with
its default and a one-line description; ``hearth config`` prints them all. Reading at call
time (never at import) lets tests and long-running servers see changes without reloads.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    env: str
    default: str
    description: str
    secret: bool = False

    def raw(self) -> str:
        value = os.environ.get(self.env, "")
        return value if value.strip() else self.default


SETTINGS: dict[str, Setting] = {
    s.env: s
    for s in [
        Setting("HEARTH_HOME", "~/.hearth", "Folder for models, blobs and settings."),
        Setting("HEARTH_HOST", "127.0.0.1:11435", "Address the server binds and the CLI calls."),
        Setting("HEARTH_KEEP_ALIVE", "5m", "How long an idle model stays loaded (e.g. 30s, 5m, 1h, -1)."),
        Setting("HEARTH_NUM_PARALLEL", "4", "Requests decoded together per loaded model."),
        Setting("HEARTH_MAX_QUEUE", "512", "Requests allowed to wait before the server answers 503."),
        Setting("HEARTH_MAX_LOADED_MODELS", "0", "Most models loaded at once (0: as many as memory allows)."),
        Setting("HEARTH_MAX_REQUEST_BYTES", "33554432", "Largest request body the server accepts (413 above)."),
        Setting("HEARTH_CONTEXT_LENGTH", "4096", "Default context window (num_ctx), capped at the model's own."),
        Setting("HEARTH_NUM_THREAD", "", "CPU threads for generation (default: all cores)."),
        Setting("HEARTH_ORIGINS", "", "Extra browser origins allowed by CORS, comma-separated."),
        Setting("HEARTH_ALLOWED_HOSTS", "", "Extra Host header names the server accepts, comma-separated."),
        Setting("HEARTH_API_KEY", "", "If set, clients must send 'Authorization: Bearer KEY' (or 'x-api-key: KEY').", secret=True),
        Setting("HEARTH_OFFLINE", "0", "1 refuses every network download and remote provider call."),
        Setting("HEARTH_PROVIDER_TIMEOUT", "60", "Seconds to wait for a remote provider to connect or send the next piece."),
        Setting("HEARTH_PROVIDER_RETRIES", "2", "Retries of a remote call after a 429, a 5xx or a refused connection."),
        Setting("HEARTH_PROVIDER_MAX_WAIT", "30", "Longest Retry-After (seconds) hearth waits out; longer fails at once."),
        Setting("HEARTH_PROVIDER_CONCURRENCY", "4", "Calls in flight per remote provider; more wait their turn."),
        Setting("HEARTH_LICENSE_POLICY", "", "TOML license policy (allowed, denied, commercial) enforced at pull, run and serve."),
        Setting("HEARTH_DEBUG", "0", "1 shows tracebacks for errors."),
        Setting("HEARTH_CRASH_GUARD", "1", "0 runs CLI engine work in the hearth process itself (for a debugger) instead of a forked child."),
        Setting("HEARTH_DOWNLOAD_PARTS", "4", "Ranged parts fetched at once for downloads of 64 MiB or more (1: one stream)."),
        Setting("HEARTH_TEMPLATE_TIMEOUT", "2", "Seconds a chat template may take to render before the request is refused."),
        Setting("HEARTH_TEMPLATE_MAX_CHARS", "1000000", "Most characters a chat template may render (a prompt beyond is refused)."),
        Setting("HEARTH_FLASH_ATTENTION", "off", "Flash attention: off (default: answers from the prompt cache match cold ones), auto (llama.cpp decides per device) or on."),
        Setting("HEARTH_KV_CACHE_TYPE", "f16", "KV-cache type: f16, q8_0 or q4_0 (quantized types need flash attention)."),
        Setting("HEARTH_LOAD_TIMEOUT", "5m", "Longest a model runner may take to load a model before it is stopped."),
        Setting("HEARTH_RUNNER_TIMEOUT", "5m", "A runner silent or stuck in one step this long counts as hung: it is stopped and its requests fail."),
        Setting("HEARTH_RESPONSES_KEEP", "1000", "Most responses /v1/responses keeps on disk for previous_response_id (oldest dropped)."),
    ]
}


def _raw(env: str) -> str:
    return SETTINGS[env].raw()


def _int(env: str, minimum: int = 0) -> int:
    from hearth.errors import InvalidRequest

    text = _raw(env)
    try:
        value = int(text)
    except ValueError:
        raise InvalidRequest(f"{env} must be a whole number, not '{text}'") from None
    if value < minimum:
        raise InvalidRequest(f"{env} must be at least {minimum}, not {value}")
    return value


def _flag(env: str) -> bool:
    return _raw(env).strip().lower() in {"1", "true", "yes", "on"}


def _list(env: str) -> list[str]:
    return [item.strip() for item in _raw(env).split(",") if item.strip()]


def home() -> Path:
    return Path(os.path.expanduser(_raw("HEARTH_HOME"))).resolve()


def host() -> str:
    """``host:port`` with scheme stripped; a bare port or host gets the default for the other."""
    text = _raw("HEARTH_HOST").strip()
    for prefix in ("http://", "https://"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
    text = text.rstrip("/")
    if text.isdigit():
        return f"127.0.0.1:{text}"
    if ":" not in text or text.endswith("]"):
        return f"{text}:11435"
    return text


def keep_alive_seconds() -> float:
    return parse_duration(_raw("HEARTH_KEEP_ALIVE"))


def num_parallel() -> int:
    return _int("HEARTH_NUM_PARALLEL", minimum=1)


def max_queue() -> int:
    return _int("HEARTH_MAX_QUEUE", minimum=1)


def max_loaded_models() -> int:
    return _int("HEARTH_MAX_LOADED_MODELS", minimum=0)


def max_request_bytes() -> int:
    return _int("HEARTH_MAX_REQUEST_BYTES", minimum=1024)


def context_length() -> int:
    return _int("HEARTH_CONTEXT_LENGTH", minimum=16)


def num_thread() -> int:
    if not _raw("HEARTH_NUM_THREAD"):
        return max(1, os.cpu_count() or 1)
    return _int("HEARTH_NUM_THREAD", minimum=1)


def origins() -> list[str]:
    return _list("HEARTH_ORIGINS")


def allowed_hosts() -> list[str]:
    return _list("HEARTH_ALLOWED_HOSTS")


def api_key() -> str:
    return _raw("HEARTH_API_KEY")


def offline() -> bool:
    return _flag("HEARTH_OFFLINE")


def providers_file() -> Path:
    """Where remote providers are declared (see hearth.providers)."""
    return home() / "providers.toml"


def provider_timeout() -> int:
    return _int("HEARTH_PROVIDER_TIMEOUT", minimum=1)


def provider_retries() -> int:
    return _int("HEARTH_PROVIDER_RETRIES", minimum=0)


def provider_max_wait() -> int:
    return _int("HEARTH_PROVIDER_MAX_WAIT", minimum=0)


def provider_concurrency() -> int:
    return _int("HEARTH_PROVIDER_CONCURRENCY", minimum=1)


def license_policy_path() -> Path | None:
    text = _raw("HEARTH_LICENSE_POLICY")
    return Path(os.path.expanduser(text)) if text else None


def debug() -> bool:
    return _flag("HEARTH_DEBUG")


def crash_guard() -> bool:
    return _flag("HEARTH_CRASH_GUARD")


def download_parts() -> int:
    return _int("HEARTH_DOWNLOAD_PARTS", minimum=1)


def responses_keep() -> int:
    return _int("HEARTH_RESPONSES_KEEP", minimum=1)


# Longer than this is forever: a finite deadline past it would overflow the clock's arithmetic
# (datetime.fromtimestamp) for as long as the model stays loaded.
FOREVER_AFTER_SECONDS = 100 * 365 * 24 * 3600.0


def parse_duration(text: str | int | float) -> float:
    """Ollama-style durations: seconds as a number, or '300ms', '30s', '5m', '1h'; negative = forever."""
    from hearth.errors import InvalidRequest

    if isinstance(text, (int, float)):
        return _bounded_duration(float(text), text)
    value = text.strip().lower()
    units = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    try:
        for suffix in ("ms", "s", "m", "h"):
            if value.endswith(suffix):
                number = float(value[: -len(suffix)]) * units[suffix]
                break
        else:
            number = float(value)
    except ValueError:
        raise InvalidRequest(f"invalid duration '{text}': use e.g. 30s, 5m, 1h or -1") from None
    return _bounded_duration(number, text)


def _bounded_duration(number: float, text: object) -> float:
    from hearth.errors import InvalidRequest

    if math.isnan(number):
        raise InvalidRequest(f"invalid duration '{text}': not a number")
    return float("inf") if number < 0 or number > FOREVER_AFTER_SECONDS else number


def flash_attention() -> str:
    # Off by default: with flash attention llama.cpp's results depend on how the KV cache was
    # filled, so an answer reusing a cached prefix differed from a cold one (measured).
    return _choice("HEARTH_FLASH_ATTENTION", ("off", "auto", "on"))


def kv_cache_type() -> str:
    return _choice("HEARTH_KV_CACHE_TYPE", ("f16", "q8_0", "q4_0"))


def _choice(env: str, choices: tuple[str, ...]) -> str:
    from hearth.errors import InvalidRequest

    value = _raw(env).strip().lower() or choices[0]
    if value not in choices:
        raise InvalidRequest(f"{env} must be one of {', '.join(choices)}, not '{_raw(env)}'")
    return value


def load_timeout() -> float:
    return _positive_duration("HEARTH_LOAD_TIMEOUT")


def runner_timeout() -> float:
    return _positive_duration("HEARTH_RUNNER_TIMEOUT")


def _positive_duration(env: str) -> float:
    from hearth.errors import InvalidRequest

    seconds = parse_duration(_raw(env))
    if seconds <= 0:
        raise InvalidRequest(f"{env} must be a positive duration, not '{_raw(env)}'")
    return seconds


def describe() -> list[tuple[str, str, str]]:
    """(name, value shown to the user, description) for every setting; secrets redacted."""
    rows = []
    for setting in SETTINGS.values():
        value = setting.raw()
        if setting.secret and value:
            value = "***** (set)"
        rows.append((setting.env, value, setting.description))
    return rows
