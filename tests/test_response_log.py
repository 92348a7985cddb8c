"""The on-disk log of Responses API responses (store/response_log.py): round trips, the bound by
count, ids that cannot reach outside the folder, atomic writes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hearth import config
from hearth.errors import InvalidRequest, StoreError
from hearth.store.response_log import ResponseLog, ResponseNotFound, valid_id


def record(n: int) -> dict:
    return {"response": {"id": f"resp_{n}", "output": [{"type": "message", "text": "é" * n}]},
            "history": [{"type": "message", "role": "user", "content": str(n)}]}


def aged(log: ResponseLog, response_id: str, seconds: int) -> None:
    """Give a record a known age (mtime) so the order does not depend on the clock."""
    os.utime(log.root / f"{response_id}.json", ns=(seconds * 10**9, seconds * 10**9))


def test_save_load_delete_round_trip(tmp_path: Path) -> None:
    log = ResponseLog(tmp_path / "responses", keep=10)
    log.save("resp_1", record(1))
    assert log.load("resp_1") == record(1)
    log.save("resp_1", record(2))  # saving again replaces
    assert log.load("resp_1") == record(2)
    assert log.ids() == ["resp_1"]
    log.delete("resp_1")
    with pytest.raises(ResponseNotFound) as missing:
        log.load("resp_1")
    assert missing.value.status_code == 404 and "resp_1" in missing.value.message
    with pytest.raises(ResponseNotFound):
        log.delete("resp_1")
    # Nothing but the records was ever left in the folder (temp files renamed into place).
    assert list(log.root.iterdir()) == []


def test_an_empty_or_missing_folder_is_an_empty_log(tmp_path: Path) -> None:
    log = ResponseLog(tmp_path / "not-yet", keep=3)
    assert log.ids() == []
    with pytest.raises(ResponseNotFound):
        log.load("resp_abc")


def test_the_oldest_records_beyond_the_bound_are_dropped(tmp_path: Path) -> None:
    log = ResponseLog(tmp_path, keep=3)
    for n in range(3):
        log.save(f"resp_{n}", record(n))
        aged(log, f"resp_{n}", 1000 + n)
    assert log.ids() == ["resp_0", "resp_1", "resp_2"]
    log.save("resp_9", record(9))  # newest by mtime (now)
    assert log.ids() == ["resp_1", "resp_2", "resp_9"]
    aged(log, "resp_2", 10)  # now the oldest
    log.save("resp_10", record(10))
    assert log.ids() == ["resp_1", "resp_9", "resp_10"]
    # Leftover temp files neither count nor get read as records.
    (tmp_path / ".tmp-123-abc").write_text("partial")
    assert log.ids() == ["resp_1", "resp_9", "resp_10"]


def test_the_bound_is_the_setting_read_at_call_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEARTH_RESPONSES_KEEP", raising=False)
    assert config.responses_keep() == 1000
    monkeypatch.setenv("HEARTH_HOME", str(tmp_path / "home"))
    log = ResponseLog()
    assert log.root == (tmp_path / "home" / "responses").resolve()
    monkeypatch.setenv("HEARTH_RESPONSES_KEEP", "1")
    log.save("resp_a", record(1))
    aged(log, "resp_a", 5)
    log.save("resp_b", record(2))
    assert log.ids() == ["resp_b"]
    monkeypatch.setenv("HEARTH_RESPONSES_KEEP", "0")
    with pytest.raises(InvalidRequest, match="HEARTH_RESPONSES_KEEP must be at least 1"):
        log.save("resp_c", record(3))


@pytest.mark.parametrize("bad", ["", "resp_", "../resp_1", "resp_../../x", "resp_a/b", "resp_a\\b",
                                 "resp_a.json", "resp_" + "a" * 101, "msg_abc", "resp_a\x00", "RESP_abc",
                                 "resp_é", "resp_abc\n"])
def test_ids_that_are_not_response_ids_never_become_paths(tmp_path: Path, bad: str) -> None:
    root = tmp_path / "responses"
    outside = tmp_path / "secret.json"
    outside.write_text('{"response": "secret"}')
    log = ResponseLog(root, keep=5)
    assert not valid_id(bad)
    with pytest.raises(ResponseNotFound):
        log.load(bad)
    with pytest.raises(ResponseNotFound):
        log.delete(bad)
    with pytest.raises(ResponseNotFound):
        log.save(bad, record(1))
    assert outside.read_text() == '{"response": "secret"}'
    assert not root.exists()


def test_a_damaged_record_is_a_store_error_not_a_crash(tmp_path: Path) -> None:
    log = ResponseLog(tmp_path, keep=5)
    (tmp_path / "resp_x.json").write_text("{not json")
    with pytest.raises(StoreError, match="not valid JSON"):
        log.load("resp_x")
