"""The write actions: only with the token, never cross-site, each audited as a decision."""

from __future__ import annotations

from dataclasses import replace

from tests.web.conftest import TOKEN, World
from tuner.domain.lifecycle import State
from tuner.domain.model import Mode

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_without_the_token_nothing_can_be_changed(world: World) -> None:
    world.cycle()
    assert world.post("/api/actions/pause", {"function": "fake:oomer"})[0] == 401
    wrong = {"Authorization": "Bearer " + "x" * len(TOKEN)}
    assert world.post("/api/actions/pause", {"function": "fake:oomer"}, **wrong)[0] == 401
    status, answer = world.post(
        "/api/actions/pause", {"function": "fake:oomer"}, Origin="http://evil.example", **AUTH
    )
    assert status == 403 and "cross-origin" in answer["error"]
    assert world.post("/api/actions/delete-everything", {}, **AUTH)[0] == 404
    assert world.tuner.store.get_state("paused:fake:oomer") is None


def test_pause_holds_back_the_loop_s_changes_until_resumed(world: World) -> None:
    status, answer = world.post(
        "/api/actions/pause", {"function": "fake:oomer", "by": "ana", "why": "load test"}, **AUTH
    )
    assert status == 200 and answer["decision"]["action"] == "pause"
    world.cycle()
    assert world.provider.configs["oomer"].memory_mb == 128  # the OOM was found, not acted on
    [held] = [d for d in world.tuner.store.decisions() if d.rule == "oom"]
    assert held.state is State.SKIPPED and "paused by ana (dashboard" in held.why
    audit = [d for d in world.tuner.store.decisions() if d.rule == "manual"]
    assert [(d.action, d.why) for d in audit] == [("pause", "load test")]
    assert world.post("/api/actions/resume", {"function": "fake:oomer"}, **AUTH)[0] == 200
    world.clock.advance(3600)
    world.cycle()
    assert world.provider.configs["oomer"].memory_mb == 256
    assert world.post("/api/actions/resume", {"function": "fake:oomer"}, **AUTH)[0] == 409


def test_a_change_can_be_rolled_back_by_hand(world: World) -> None:
    world.cycle()
    [change] = [d for d in world.tuner.store.decisions() if d.state is State.APPLIED]
    status, answer = world.post(
        "/api/actions/rollback", {"decision": change.id, "by": "ana"}, **AUTH
    )
    assert status == 200, answer
    assert world.provider.configs["oomer"].memory_mb == 128
    assert answer["decision"]["state"] == "applied" and answer["decision"]["undoes"] == change.id
    original = world.tuner.store.get(change.id)
    assert original is not None and original.state is State.ROLLED_BACK
    assert "rolled back: by ana" in original.why
    again = world.post("/api/actions/rollback", {"decision": change.id}, **AUTH)
    assert again[0] == 409
    world.cycle()  # the fleet shows it
    states = {r["name"]: r["state"] for r in world.json("/api/fleet")["rows"]}
    assert states["oomer"] == "rolled back"


def test_a_recommendation_can_be_approved(world: World) -> None:
    daemon = world.tuner.daemon
    daemon.settings = replace(daemon.settings, mode=Mode.RECOMMEND)
    world.cycle()
    [advice] = [d for d in world.tuner.store.decisions() if d.state is State.RECOMMENDED]
    assert world.provider.configs["oomer"].memory_mb == 128
    status, answer = world.post(
        "/api/actions/approve", {"decision": advice.id, "by": "ana"}, **AUTH
    )
    assert status == 200, answer
    assert world.provider.configs["oomer"].memory_mb == 256
    assert (
        answer["decision"]["state"] == "applied"
        and "approved by ana" in answer["decision"]["reason"]
    )
    assert world.post("/api/actions/approve", {"decision": "nope"}, **AUTH)[0] == 409


def test_without_a_configured_token_the_server_is_read_only(world: World) -> None:
    import json
    import urllib.error
    import urllib.request

    from tuner.web.attaching import attach

    world.cycle()
    assert world.json("/api/actions")["enabled"] is True
    assert "pause tuning" in world.get("/functions/oomer")[2].decode()
    read_only = attach(world.tuner, ("127.0.0.1", 0), token=None)
    try:
        url = (read_only.url or "").rstrip("/")
        world.cycle()
        with urllib.request.urlopen(url + "/api/actions", timeout=5) as answer:
            assert json.loads(answer.read())["enabled"] is False
        with urllib.request.urlopen(url + "/functions/oomer", timeout=5) as answer:
            page = answer.read().decode()
        assert "memory_mb" in page and "pause tuning" not in page and "roll back" not in page
        request = urllib.request.Request(
            url + "/api/actions/pause",
            data=b'{"function": "fake:oomer"}',
            method="POST",
            headers=AUTH,
        )
        try:
            urllib.request.urlopen(request, timeout=5)
            raise AssertionError("a read-only server accepted an action")
        except urllib.error.HTTPError as exc:
            assert exc.code == 403
    finally:
        read_only.close()


def test_a_short_token_is_refused_and_a_token_file_is_read(tmp_path: object) -> None:
    from pathlib import Path

    import pytest

    from tuner.web.controls import load_token

    assert load_token({}) is None
    from tuner.domain.errors import ConfigError

    with pytest.raises(ConfigError, match="at least 16"):
        load_token({"TUNER_WEB_TOKEN": "short"})
    path = Path(str(tmp_path)) / "token"
    path.write_text(TOKEN + "\n")
    assert load_token({"TUNER_WEB_TOKEN_FILE": str(path)}) == TOKEN


def test_a_bare_name_that_is_unique_is_the_function_and_an_unknown_one_changes_nothing(
    world: World,
) -> None:
    status, answer = world.post("/api/actions/pause", {"function": "oomer"}, **AUTH)
    assert status == 200 and answer["decision"]["function"] == "fake:oomer"
    assert world.tuner.store.get_state("paused:fake:oomer") is not None
    world.cycle()
    assert world.provider.configs["oomer"].memory_mb == 128  # the real function is paused
    before = len(world.tuner.store.decisions())
    status, answer = world.post("/api/actions/pause", {"function": "oomr"}, **AUTH)
    assert status == 404 and "no function 'oomr' (did you mean 'oomer'" in answer["error"]
    assert world.post("/api/actions/resume", {"function": "nope"}, **AUTH)[0] == 404
    assert len(world.tuner.store.decisions()) == before  # nothing recorded for them
    assert world.tuner.store.get_state("paused:oomr") is None


def test_a_bare_name_that_two_functions_share_is_refused(world: World) -> None:
    other = replace(world.provider, name="other", configs=dict(world.provider.configs))
    world.tuner.daemon.providers.append(other)  # manual control shares the daemon's list
    status, answer = world.post("/api/actions/pause", {"function": "oomer"}, **AUTH)
    assert status == 409 and "fake:oomer, other:oomer" in answer["error"]
    assert world.post("/api/actions/pause", {"function": "other:oomer"}, **AUTH)[0] == 200


def test_a_newer_recommendation_supersedes_the_older_whose_approval_then_changes_nothing(
    world: World,
) -> None:
    daemon = world.tuner.daemon
    daemon.settings = replace(daemon.settings, mode=Mode.RECOMMEND)
    world.cycle()
    oomer = world.provider.windows["oomer"]
    world.provider.windows["oomer"] = replace(oomer, extra={"traced_peak_memory_mb": 300.0})
    world.cycle()  # new evidence: another size for the same knob
    older, newer = [d for d in world.tuner.store.decisions() if d.rule == "oom"]
    assert newer.state is State.RECOMMENDED and newer.change != older.change
    assert older.state is State.SUPERSEDED and newer.id in older.why
    status, answer = world.post("/api/actions/approve", {"decision": older.id}, **AUTH)
    assert status == 409 and "no longer live" in answer["error"]
    assert world.provider.configs["oomer"].memory_mb == 128
    assert world.post("/api/actions/approve", {"decision": newer.id}, **AUTH)[0] == 200
    assert world.provider.configs["oomer"].memory_mb == newer.change.after  # type: ignore[union-attr]
