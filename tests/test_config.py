"""Settings (read from HEARTH_* at call time), `hearth config`, and the error hierarchy."""

from __future__ import annotations

import math
import os
from pathlib import Path

import pytest

from hearth import config, errors
from hearth.errors import HearthError, InvalidRequest
from tests.conftest import hearth_env, run_hearth


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in list(os.environ):
        if name.startswith("HEARTH_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults(clean_env: pytest.MonkeyPatch) -> None:
    assert config.home() == Path("~/.hearth").expanduser().resolve()
    assert config.host() == "127.0.0.1:11435"
    assert config.keep_alive_seconds() == 300
    assert config.num_parallel() == 4
    assert config.max_queue() == 512
    assert config.context_length() == 4096
    assert config.num_thread() == max(1, os.cpu_count() or 1)
    assert config.origins() == []
    assert config.allowed_hosts() == []
    assert config.api_key() == ""
    assert config.offline() is False
    assert config.license_policy_path() is None
    assert config.debug() is False


def test_blank_values_mean_the_default(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEARTH_NUM_PARALLEL", "   ")
    clean_env.setenv("HEARTH_HOST", "")
    assert config.num_parallel() == 4
    assert config.host() == "127.0.0.1:11435"


def test_settings_are_read_at_call_time(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = clean_env
    env.setenv("HEARTH_HOME", str(tmp_path / "one"))
    assert config.home() == (tmp_path / "one").resolve()
    env.setenv("HEARTH_HOME", str(tmp_path / "two"))
    assert config.home() == (tmp_path / "two").resolve()

    env.setenv("HEARTH_NUM_PARALLEL", "2")
    assert config.num_parallel() == 2
    env.setenv("HEARTH_NUM_PARALLEL", "7")
    assert config.num_parallel() == 7

    env.setenv("HEARTH_MAX_QUEUE", "3")
    assert config.max_queue() == 3
    env.setenv("HEARTH_CONTEXT_LENGTH", "2048")
    assert config.context_length() == 2048
    env.setenv("HEARTH_NUM_THREAD", "5")
    assert config.num_thread() == 5

    env.setenv("HEARTH_KEEP_ALIVE", "30s")
    assert config.keep_alive_seconds() == 30
    env.setenv("HEARTH_KEEP_ALIVE", "-1")
    assert config.keep_alive_seconds() == math.inf

    env.setenv("HEARTH_HOST", "9000")
    assert config.host() == "127.0.0.1:9000"
    env.setenv("HEARTH_HOST", "10.0.0.1:9001")
    assert config.host() == "10.0.0.1:9001"

    env.setenv("HEARTH_ORIGINS", "http://a.example, https://b.example ,,")
    assert config.origins() == ["http://a.example", "https://b.example"]
    env.setenv("HEARTH_ALLOWED_HOSTS", "box.lan")
    assert config.allowed_hosts() == ["box.lan"]

    env.setenv("HEARTH_API_KEY", "k1")
    assert config.api_key() == "k1"
    env.setenv("HEARTH_API_KEY", "k2")
    assert config.api_key() == "k2"

    for value, expected in [("1", True), ("true", True), ("YES", True), ("0", False), ("no", False)]:
        env.setenv("HEARTH_OFFLINE", value)
        assert config.offline() is expected, value
        env.setenv("HEARTH_DEBUG", value)
        assert config.debug() is expected, value

    env.setenv("HEARTH_LICENSE_POLICY", str(tmp_path / "policy.toml"))
    assert config.license_policy_path() == tmp_path / "policy.toml"
    env.delenv("HEARTH_LICENSE_POLICY")
    assert config.license_policy_path() is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("8080", "127.0.0.1:8080"),
        ("http://0.0.0.0:1234/", "0.0.0.0:1234"),
        ("https://0.0.0.0:1234", "0.0.0.0:1234"),
        ("example", "example:11435"),
        ("http://example/", "example:11435"),
        ("0.0.0.0:11434", "0.0.0.0:11434"),
        ("  127.0.0.1:5000  ", "127.0.0.1:5000"),
    ],
)
def test_host_forms(clean_env: pytest.MonkeyPatch, value: str, expected: str) -> None:
    clean_env.setenv("HEARTH_HOST", value)
    assert config.host() == expected


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("5m", 300.0),
        ("30s", 30.0),
        ("1h", 3600.0),
        ("300ms", 0.3),
        ("1.5h", 5400.0),
        ("90", 90.0),
        ("0", 0.0),
        (" 5M ", 300.0),
        (42, 42.0),
        (2.5, 2.5),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert config.parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("forever", ["-1", "-1s", "-5m", -1, -0.5])
def test_negative_durations_mean_forever(forever: str | int | float) -> None:
    assert config.parse_duration(forever) == math.inf


@pytest.mark.parametrize("text", ["soon", "", "m", "5 minutes", "1d", "5mm", "s30"])
def test_bad_durations_raise_invalid_request(text: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        config.parse_duration(text)
    assert "duration" in info.value.message


def test_bad_keep_alive_setting_names_the_value(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEARTH_KEEP_ALIVE", "forever-ish")
    with pytest.raises(InvalidRequest) as info:
        config.keep_alive_seconds()
    assert "forever-ish" in info.value.message


@pytest.mark.parametrize("value", ["many", "0", "-3", "1.5", "4x"])
def test_invalid_num_parallel_names_the_variable(clean_env: pytest.MonkeyPatch, value: str) -> None:
    clean_env.setenv("HEARTH_NUM_PARALLEL", value)
    with pytest.raises(InvalidRequest) as info:
        config.num_parallel()
    assert "HEARTH_NUM_PARALLEL" in info.value.message
    assert "HEARTH_NUM_PARALLEL" in info.value.cli_message()


@pytest.mark.parametrize(
    ("env", "reader", "value"),
    [
        ("HEARTH_MAX_QUEUE", config.max_queue, "0"),
        ("HEARTH_MAX_QUEUE", config.max_queue, "lots"),
        ("HEARTH_CONTEXT_LENGTH", config.context_length, "8"),
        ("HEARTH_NUM_THREAD", config.num_thread, "zero"),
    ],
)
def test_invalid_numbers_name_their_variable(clean_env: pytest.MonkeyPatch, env: str, reader, value: str) -> None:
    clean_env.setenv(env, value)
    with pytest.raises(InvalidRequest, match=env):
        reader()


def test_describe_lists_every_setting(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HEARTH_NUM_PARALLEL", "3")
    rows = config.describe()
    assert [name for name, _, _ in rows] == list(config.SETTINGS)
    assert len(config.SETTINGS) >= 10
    values = {name: value for name, value, _ in rows}
    assert values["HEARTH_NUM_PARALLEL"] == "3"
    assert values["HEARTH_HOST"] == "127.0.0.1:11435"
    for name, _value, description in rows:
        assert name.startswith("HEARTH_")
        assert description.strip() and "\n" not in description, name


def test_describe_redacts_the_api_key(clean_env: pytest.MonkeyPatch) -> None:
    assert config.SETTINGS["HEARTH_API_KEY"].secret
    assert dict((n, v) for n, v, _ in config.describe())["HEARTH_API_KEY"] == ""
    clean_env.setenv("HEARTH_API_KEY", "supersecret-123")
    rows = config.describe()
    assert "supersecret-123" not in repr(rows)
    shown = dict((n, v) for n, v, _ in rows)["HEARTH_API_KEY"]
    assert shown  # says that a key is set, without showing it
    # The key itself is still what the server checks.
    assert config.api_key() == "supersecret-123"


def test_cli_config_prints_every_setting_and_hides_the_key(tmp_path: Path) -> None:
    env = hearth_env(tmp_path / "home", HEARTH_API_KEY="supersecret-123", HEARTH_NUM_PARALLEL="3")
    result = run_hearth(["config"], env)
    assert result.returncode == 0, result.stderr
    assert "supersecret-123" not in result.stdout + result.stderr
    lines = result.stdout.splitlines()
    for name in config.SETTINGS:
        assert any(line.split()[:1] == [name] for line in lines), f"{name} missing from:\n{result.stdout}"
    parallel = next(line for line in lines if line.startswith("HEARTH_NUM_PARALLEL"))
    assert parallel.split()[1] == "3"
    home = next(line for line in lines if line.startswith("HEARTH_HOME "))
    assert str((tmp_path / "home").resolve()) in home or str(tmp_path / "home") in home


# -- errors ---------------------------------------------------------------------------------


def _error_classes() -> list[type[HearthError]]:
    found: list[type[HearthError]] = []
    pending: list[type[HearthError]] = [HearthError]
    while pending:
        cls = pending.pop()
        if cls not in found:
            found.append(cls)
            pending.extend(cls.__subclasses__())
    # Only the classes errors.py defines (tests and other modules may add their own).
    return sorted((c for c in found if c.__module__ == errors.__name__), key=lambda c: c.__name__)


def _instance(cls: type[HearthError]) -> HearthError:
    special = {
        errors.InvalidModelFile: lambda: errors.InvalidModelFile("/models/x.gguf", "bad magic"),
        errors.ModelfileError: lambda: errors.ModelfileError(3, "unknown instruction 'FOO'"),
        errors.ModelNotFound: lambda: errors.ModelNotFound("smollm2:latest", "pull it first"),
        errors.ServerBusy: lambda: errors.ServerBusy(),
    }
    if cls in special:
        return special[cls]()
    return cls("something went wrong")


def test_the_error_hierarchy_is_discovered() -> None:
    names = {cls.__name__ for cls in _error_classes()}
    assert {"HearthError", "InvalidRequest", "InvalidModelName", "ModelNotFound", "StoreError",
            "DigestMismatch", "ServerBusy", "LicenseBlocked", "InvalidModelFile"} <= names


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda c: c.__name__)
def test_every_error_has_a_status_and_a_one_line_message(cls: type[HearthError]) -> None:
    error = _instance(cls)
    assert isinstance(error.status_code, int) and not isinstance(error.status_code, bool)
    assert 400 <= error.status_code <= 599
    line = error.cli_message()
    assert line.startswith("Error: ")
    assert "\n" not in line and "\r" not in line
    assert error.message and error.message in line
    assert str(error) == error.message


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.InvalidRequest("x"), 400),
        (errors.InvalidModelName("x"), 400),
        (errors.ModelfileError(1, "x"), 400),
        (errors.InvalidModelFile("f", "x"), 400),
        (errors.DigestMismatch("x"), 400),
        (errors.LicenseBlocked("x"), 403),
        (errors.ModelNotFound("m"), 404),
        (errors.StoreError("x"), 500),
        (errors.DownloadFailed("x"), 502),
        (errors.ServerBusy(), 503),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, Exception) else str(v),
)
def test_statuses(error: HearthError, status: int) -> None:
    assert error.status_code == status


def test_error_details() -> None:
    assert "line 3" in errors.ModelfileError(3, "bad").cli_message()
    assert errors.ModelfileError(3, "bad").line == 3
    missing = errors.ModelNotFound("smollm2:latest", "pull it first")
    assert "smollm2:latest" in missing.message and "not found" in missing.message
    assert "pull it first" in missing.message
    bad_file = errors.InvalidModelFile("/m/x.gguf", "bad magic")
    assert "/m/x.gguf" in bad_file.message and "not a valid GGUF model" in bad_file.message
    busy = errors.ServerBusy(retry_after=3)
    assert busy.retry_after == 3 and busy.status_code == 503


def test_cli_message_stays_one_line_for_user_text_with_newlines() -> None:
    from hearth.names import ModelName

    with pytest.raises(errors.InvalidModelName) as info:
        ModelName.parse("bad\nname")
    line = info.value.cli_message()
    assert line.startswith("Error: ")
    assert "\n" not in line
