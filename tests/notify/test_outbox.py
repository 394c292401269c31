"""The outbox's SQLite tables: versioned group snapshots, claims, pruning."""

from __future__ import annotations

import json
from pathlib import Path

from tests.notify.conftest import T0
from tuner.notify.grouping import Changes, Group
from tuner.notify.messages import Message
from tuner.notify.outbox import Outbox


def snapshot(key: str, version: int, created: float) -> tuple[str, str, int, str]:
    return ("c", key, version, json.dumps(Group("c", key, created, version=version).to_dict()))


def test_an_older_group_snapshot_never_overwrites_a_newer_one(tmp_path: Path) -> None:
    outbox = Outbox(tmp_path / "t.db", owner="a")
    outbox.save(Changes([snapshot("g", 2, T0 + 2)], []))
    outbox.save(Changes([snapshot("g", 1, T0 + 1)], []))  # written late, out of order
    assert [g.created_at for g in outbox.load_groups()] == [T0 + 2]
    outbox.save(Changes([], [("c", "g", 2)]))  # a deletion of that same version loses too
    assert len(outbox.load_groups()) == 1
    outbox.save(Changes([], [("c", "g", 3)]))
    assert outbox.load_groups() == []
    outbox.close()


def message(n: int) -> Message:
    return Message(id=f"m{n}", channel="c", group="g", kind="firing", title=f"t{n}", text="x")


def test_claims_take_the_oldest_due_message_once(tmp_path: Path) -> None:
    first, second = Outbox(tmp_path / "t.db", owner="a"), Outbox(tmp_path / "t.db", owner="b")
    first.save(Changes([], []), [message(1), message(2)], now=T0)
    claim = first.claim("c", T0, lease=60)
    assert claim is not None and claim.message.title == "t1" and claim.attempt == 1
    assert second.claim("c", T0, lease=60) is None  # the head of the queue is taken
    first.mark_sent("m1", T0 + 1)
    again = second.claim("c", T0 + 1, lease=60)
    assert again is not None and again.message.id == "m2"
    second.mark_retry("m2", T0 + 100, "HTTP 503")
    assert first.claim("c", T0 + 50, lease=60) is None  # not due yet
    assert first.next_due("c") == T0 + 100
    assert first.counts() == {"sent": 1, "queued": 1}
    assert first.prune(sent_before=T0 + 2) == 1
    first.close()
    second.close()


def test_a_grouped_message_is_told_about_every_function_it_covers(tmp_path: Path) -> None:
    """The dashboard lists a message under each function a grouped message covered."""
    import io

    from tests.fakes import FakeClock
    from tests.notify.conftest import decision
    from tuner.domain.lifecycle import State
    from tuner.notify import build_notifier

    clock = FakeClock()
    settings = {"channels": {"hook": {"type": "console"}}, "routing": {"group_wait": 1}}
    outage = {"group": "dependency:orders-db", "state": State.NOTIFIED, "action": "notify"}
    with build_notifier(settings, tmp_path / "tuner.db", clock, stream=io.StringIO()) as center:
        center.notify([decision("a", **outage), decision("b", **outage), decision("c")])
        clock.advance(30)
        center.flush(0, include_waiting=True)
        told = {
            name: [m.title for m in center.outbox.told_about(f"aws:eu-west-1/{name}")]
            for name in ("a", "b", "c", "d")
        }
    assert told["a"] == told["b"] and len(told["a"]) >= 1  # one message for both
    assert "dependency orders-db" in told["a"][0]
    assert told["c"] and told["c"] != told["a"] and told["d"] == []
