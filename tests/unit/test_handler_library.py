"""tuner_handler on its own: standard library only, and what its decorators do.

The library goes into a function's package as it is, so it may import nothing outside
Python's standard library (on Lambda, the runtime's boto3 too, only inside the function
that needs it).  Its behaviour is checked here against a context that plays a platform
in-process; the local host and moto's server run it for real elsewhere
(tests/providers/local/test_local_remedies.py, tests/providers/aws/test_aws_handover.py).
"""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tuner_handler import HandoverRefused, SplitFailed, handover, merge_results, split
from tuner_handler.envelopes import link_envelope, opened_link, opened_part, part_envelope
from tuner_handler.parts import parts_for, payload_kb, slices

LIBRARY = Path(__file__).resolve().parents[2] / "tuner_handler"
RUNTIME_SHIPS = {"boto3", "botocore"}
"""What the AWS Lambda Python runtime ships besides the standard library."""


def test_importing_the_library_loads_only_the_standard_library() -> None:
    script = (
        "import sys; before = set(sys.modules); "
        f"sys.path.insert(0, {str(LIBRARY.parent)!r}); "
        "import tuner_handler, tuner_handler.lambda_platform; "
        "print('\\n'.join(sorted(set(sys.modules) - before)))"
    )
    loaded = subprocess.run(
        [sys.executable, "-I", "-S", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    ).stdout.split()
    outside = [
        name
        for name in loaded
        if name.split(".")[0] not in sys.stdlib_module_names
        and name.split(".")[0] != "tuner_handler"
    ]
    assert "tuner_handler.lambda_platform" in loaded
    assert outside == []


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """Every module imported (absolute names) and whether at module level."""
    found = []
    top = {id(node) for node in getattr(tree, "body", [])}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.module, id(node) in top))
    return found


@pytest.mark.parametrize("path", sorted(LIBRARY.glob("*.py")), ids=lambda p: p.name)
def test_every_import_is_the_standard_library_or_the_lambda_runtime_lazily(path: Path) -> None:
    for name, at_top in _imports(ast.parse(path.read_text())):
        root = name.split(".")[0]
        if root in RUNTIME_SHIPS:
            assert not at_top, f"{path.name} imports {name} when loaded"
            assert path.name == "lambda_platform.py"
        else:
            assert root in sys.stdlib_module_names or root == "tuner_handler", name


def test_the_import_check_catches_a_foreign_import() -> None:
    tree = ast.parse("import yaml\ndef f():\n    import boto3\n")
    assert _imports(tree) == [("yaml", True), ("boto3", False)]


class Host:
    """A context that plays tuner's local host in-process: time, hand-overs and parts."""

    def __init__(
        self, remaining_ms: float = 10_000.0, ticks_ms: float = 0.0, target: Any = None
    ) -> None:
        self.target = target
        """The handler each part runs (as a part's own invocation would)."""
        self.remaining = remaining_ms
        self.ticks_ms = ticks_ms
        self.aws_request_id = "r-1"
        self.handed: list[dict[str, Any]] = []
        self.parts: list[list[Any]] = []
        self.accept = True

    def remaining_time_ms(self) -> float:
        self.remaining -= self.ticks_ms
        return self.remaining

    def hand_over(self, state: dict[str, Any]) -> dict[str, Any]:
        if not self.accept:
            return {"accepted": False, "error": "the chain reached its most links (3)"}
        self.handed.append(json.loads(json.dumps(state)))
        return {"accepted": True, "chain": "c-9", "link": 2}

    def invoke_parts(self, events: list[Any]) -> list[dict[str, Any]]:
        self.parts.append(events)
        return [{"outcome": "ok", "result": self.target(e, Host()), "error": ""} for e in events]


@handover
def worker(event: Any, context: Any) -> Any:
    """Sums squares in steps."""
    context.state.setdefault("total", 0)
    for n in context.each(list(range(event["items"]))):
        context.state["total"] += n * n
    return context.state["total"]


def test_without_a_margin_the_job_runs_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TUNER_HANDOVER_S", raising=False)
    host = Host(remaining_ms=1.0, ticks_ms=100.0)  # out of time at once, but handover is off
    assert worker({"items": 10}, host) == 285 and host.handed == []


def test_a_short_time_hands_the_state_over_and_a_link_carries_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUNER_HANDOVER_S", "0.5")
    host = Host(remaining_ms=1200.0, ticks_ms=100.0)  # 0.1 s per checkpoint
    assert worker({"items": 20}, host) == {"handed_over": {"chain": "c-9", "link": 2}}
    [state] = host.handed
    done = state["position"]
    assert 0 < done < 20 and state["total"] == sum(n * n for n in range(done))
    resumed = link_envelope("c-9", 2, state, {"items": 20})
    assert worker(resumed, Host()) == sum(n * n for n in range(20))


def test_the_chain_stops_at_its_most_links(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_HANDOVER_S", "0.5")
    monkeypatch.setenv("TUNER_HANDOVER_MAX_LINKS", "3")
    last = link_envelope("c-9", 3, {"position": 0, "total": 0}, {"items": 20})
    with pytest.raises(HandoverRefused, match="most links \\(3"):
        worker(last, Host(remaining_ms=100.0))
    host = Host(remaining_ms=100.0)
    host.accept = False
    with pytest.raises(HandoverRefused, match="most links"):
        worker({"items": 20}, host)


def test_a_handover_outside_a_platform_runs_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TUNER_HANDOVER_S", "5")

    class Bare:
        aws_request_id = "r-2"

    assert worker({"items": 4}, Bare()) == 14


@split("pages")
def indexer(event: Any, context: Any) -> Any:
    """Counts pages and letters."""
    return {"pages": len(event["pages"]), "letters": sum(len(p) for p in event["pages"])}


def test_a_split_runs_parts_and_merges(monkeypatch: pytest.MonkeyPatch) -> None:
    event = {"book": "b", "pages": ["a", "bb", "ccc", "dddd", "eeeee"]}
    monkeypatch.setenv("TUNER_FAN_OUT", "1")
    whole = indexer(event, Host())
    monkeypatch.setenv("TUNER_FAN_OUT", "2")
    host = Host(target=indexer)
    assert indexer(event, host) == whole == {"pages": 5, "letters": 15}
    [parts] = host.parts
    assert [opened_part(p)[0]["pages"] for p in parts] == [["a", "bb", "ccc"], ["dddd", "eeeee"]]
    assert all(opened_part(p)[0]["book"] == "b" for p in parts)


def test_only_an_event_over_the_size_is_split_in_parts_of_about_that_size(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TUNER_FAN_OUT", raising=False)
    monkeypatch.setenv("TUNER_SPLIT_ABOVE_KB", "1")
    small = {"pages": ["x" * 100] * 5}  # about 0.6 KB as JSON: runs whole
    host = Host(target=indexer)
    assert indexer(small, host) == {"pages": 5, "letters": 500} and host.parts == []
    large = {"pages": ["x" * 100] * 40}  # about 4.5 KB: in 5 parts of under 1 KB each
    assert indexer(large, host) == {"pages": 40, "letters": 4000}
    [parts] = host.parts
    assert len(parts) == math.ceil(payload_kb(large)) == 5
    assert all(payload_kb(opened_part(p)[0]) < 1.0 for p in parts)
    monkeypatch.setenv("TUNER_FAN_OUT", "8")  # the larger of the two counts
    assert parts_for(large) == 8
    monkeypatch.setenv("TUNER_SPLIT_ABOVE_KB", "-3")  # unreadable or negative: off
    monkeypatch.setenv("TUNER_FAN_OUT", "1")
    assert parts_for(large) == 1


def test_a_part_never_splits_again_and_a_failed_part_fails_the_split(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TUNER_FAN_OUT", "3")
    host = Host()
    event = {"pages": ["a", "b", "c"]}
    assert indexer(part_envelope(1, 3, event), host) == {"pages": 3, "letters": 3}
    assert host.parts == []
    host.invoke_parts = lambda events: (
        [  # type: ignore[method-assign]
            {"outcome": "oom", "error": "MemoryError"}
        ]
        * len(events)
    )
    with pytest.raises(SplitFailed, match="3 of 3 parts failed; part 0: oom: MemoryError"):
        indexer(event, host)


def test_one_remedy_per_handler() -> None:
    with pytest.raises(TypeError, match="one remedy"):
        split("pages")(worker)
    with pytest.raises(TypeError, match="one remedy"):
        handover(indexer)


@pytest.mark.parametrize(
    "results,merged",
    [
        ([[1], [2, 3]], [1, 2, 3]),
        ([2, 3.5], 5.5),
        ([{"n": 1, "w": {"a": 1}}, {"n": 2, "w": {"b": 2}}], {"n": 3, "w": {"a": 1, "b": 2}}),
        (["same", "same"], "same"),
    ],
)
def test_merge_results(results: list[Any], merged: Any) -> None:
    assert merge_results(results) == merged


def test_merge_results_refuses_what_it_cannot_merge() -> None:
    with pytest.raises(TypeError, match="give split"):
        merge_results(["a", "b"])
    with pytest.raises(TypeError):
        merge_results([True, False])


def test_slices_and_envelopes() -> None:
    assert slices([1, 2, 3, 4, 5], 2) == [[1, 2, 3], [4, 5]]
    assert slices([1, 2], 5) == [[1], [2]]
    event = {"x": 1}
    assert opened_link(link_envelope("c", 4, {"p": 1}, event))[1] is not None
    assert opened_link(event) == (event, None)
    assert opened_link({"tuner_handover": {"chain": 1}, "event": 2}) == (
        {"tuner_handover": {"chain": 1}, "event": 2},
        None,
    )
    assert opened_part(part_envelope(1, 2, event)) == (
        event,
        opened_part(part_envelope(1, 2, 0))[1],
    )
