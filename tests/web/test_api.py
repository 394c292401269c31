"""The daemon's HTTP answers over a real server: health, readiness, fleet, function, why, rules."""

from __future__ import annotations

import json
import shutil
import subprocess

from prometheus_client.parser import text_string_to_metric_families

from tests.web.conftest import World
from tuner.daemon.reports import STEPS


def test_health_is_up_at_once_and_ready_only_after_a_cycle(world: World) -> None:
    assert world.get("/healthz")[0] == 200
    status, _, body = world.get("/readyz")
    assert status == 503 and b"no cycle" in body
    world.cycle()
    assert world.get("/readyz")[0] == 200
    world.clock.advance(3 * 60.0 + 1)  # three intervals without a cycle: not ready
    status, _, body = world.get("/readyz")
    assert status == 503 and b"interval 60" in body


def test_fleet_states_after_two_cycles(world: World) -> None:
    world.cycle()
    fleet = world.json("/api/fleet")
    states = {r["name"]: r["state"] for r in fleet["rows"]}
    assert states == {
        "oomer": "verifying",
        "down-a": "outage",
        "down-b": "outage",
        "healthy": "healthy",
        "quiet": "no data",
    }
    oomer = next(r for r in fleet["rows"] if r["name"] == "oomer")
    assert oomer["last_change"]["change"] == "memory_mb 128 -> 256"
    assert oomer["severity"] == "critical"
    assert fleet["counts"]["outage"] == 2 and fleet["fleet"] == 5
    # the change is judged in the next window: improved, so the state becomes changed
    world.provider.windows["oomer"] = world.provider.windows["healthy"]
    world.cycle()
    world.cycle()
    states = {r["name"]: r["state"] for r in world.json("/api/fleet")["rows"]}
    assert states["oomer"] == "changed"


def test_fleet_search_filter_and_pages(world: World) -> None:
    world.cycle()
    assert [r["name"] for r in world.json("/api/fleet?q=DOWN")["rows"]] == ["down-a", "down-b"]
    assert [r["name"] for r in world.json("/api/fleet?state=no+data")["rows"]] == ["quiet"]
    page = world.json("/api/fleet?per_page=2&page=3")
    assert (page["page"], page["pages"], page["total"], len(page["rows"])) == (3, 3, 5, 1)


def test_function_answer_has_history_markers_and_no_environment(world: World) -> None:
    world.provider.configs["oomer"] = world.provider.configs["oomer"].__class__(
        memory_mb=128, timeout_s=3.0, environment={"DB_PASSWORD": "hunter2-secret"}, revision="1"
    )
    world.cycle()
    world.provider.windows["oomer"] = world.provider.windows["healthy"]
    world.cycle()
    status, _, body = world.get("/api/functions/fake:oomer")
    assert status == 200 and b"hunter2-secret" not in body and b"DB_PASSWORD" not in body
    fn = json.loads(body)
    assert fn["history"]["memory_mb"] == [128.0, 256.0]
    assert fn["history"]["peak_memory_mb"] == [128.0, 150.0]
    assert [m["text"] for m in fn["markers"]] == ["oom: memory_mb 128 -> 256"]
    assert fn["markers"][0]["time"] == fn["history"]["time"][0]
    assert fn["decisions"][0]["rule"] in ("oom",) and any(
        d["before"] == 128 for d in fn["decisions"]
    )
    page = world.get("/functions/oomer")[2].decode()
    assert "memory_mb 128 → 256" in page and "hunter2" not in page
    assert world.get("/api/functions/fake:nope")[0] == 404


def test_why_a_healthy_function_fired_nothing(world: World) -> None:
    world.cycle()
    why = {r["rule"]: r for r in world.json("/api/why?function=healthy")["rules"]}
    assert why["oom"]["verdict"] == "did not fire"
    assert why["oom"]["condition"]["clauses"][0] == {
        "text": "ooms > 0.0",
        "value": False,
        "status": "does not hold",
        "facts": {"ooms": 0.0},
        "operands": [0.0, 0.0],
        "joiner": "",
        "parts": [],
    }
    assert why["right-size"]["verdict"] == "waiting"  # 150 of 512 MB: holds, 1 of 30 windows
    assert "1 of 30" in why["right-size"]["text"]
    oomer = {r["rule"]: r for r in world.json("/api/why?function=fake:oomer")["rules"]}
    assert oomer["oom"]["verdict"] == "fired"
    quiet = world.json("/api/why?function=quiet&rule=oom")["rules"]
    assert [r["verdict"] for r in quiet] == ["no data"]
    assert world.get("/api/why?function=healthy&rule=nope")[0] == 404
    assert world.get("/api/why")[0] == 400
    page = world.get("/rules?function=healthy")[2].decode()
    assert "did not fire" in page and "ooms = 0" in page


def test_rules_topology_and_decisions(world: World) -> None:
    world.cycle()
    rules = world.json("/api/rules")
    assert [r["name"] for r in rules][:2] == ["oom", "timeout"]
    assert rules[0]["source"].endswith("default.yaml:6")
    topo = world.json("/api/topology")
    assert {(e["from"], e["to"]) for e in topo["edges"]} == {
        ("fake:down-a", "orders-db"),
        ("fake:down-b", "orders-db"),
        ("fake:healthy", "cache"),
    }
    orders = next(d for d in topo["dependencies"] if d["name"] == "orders-db")
    assert orders == {"name": "orders-db", "callers": 2, "failing": 2}
    assert "<svg" in world.get("/topology")[2].decode()
    decisions = world.json("/api/decisions?function=oomer")
    assert decisions and all(d["function"] == "fake:oomer" for d in decisions)


def test_metrics_count_what_the_loop_did(world: World) -> None:
    world.cycle()
    status, headers, body = world.get("/metrics")
    assert status == 200 and headers["Content-Type"].startswith("text/plain")
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
    }
    assert samples[("tuner_cycles_total", ())] == 1
    assert samples[("tuner_functions", (("provider", "fake"),))] == 5
    assert samples[("tuner_findings_total", (("rule", "oom"),))] == 1
    assert samples[("tuner_findings_total", (("rule", "dependency-down"),))] == 2
    key = (
        "tuner_decisions_total",
        (("action", "more-memory"), ("outcome", "applied"), ("rule", "oom")),
    )
    assert samples[key] == 1
    assert (
        samples[
            (
                "tuner_provider_calls_total",
                (("operation", "apply"), ("provider", "fake"), ("result", "ok")),
            )
        ]
        == 1
    )
    assert samples[("tuner_function_states", (("state", "outage"),))] == 2
    assert samples[("tuner_build_info", (("version", "0.1.0"),))] == 1
    assert ("tuner_outbox_pending", ()) in samples
    assert not any("function" in dict(labels) for _, labels in samples)
    for step in STEPS:
        assert samples[("tuner_cycle_step_seconds_count", (("step", step),))] == 1, step
    promtool = shutil.which("promtool")
    assert promtool, "Debian's prometheus package provides promtool"
    checked = subprocess.run(
        [promtool, "check", "metrics"], input=body, capture_output=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_assets_are_served_from_the_package(world: World) -> None:
    status, headers, body = world.get("/static/uPlot.iife.min.js")
    assert status == 200 and b"uPlot" in body and "javascript" in headers["Content-Type"]
    assert world.get("/static/../metrics.py")[0] == 404
    html_headers = world.get("/")[1]
    assert "default-src 'self'" in html_headers["Content-Security-Policy"]


def test_requests_for_another_host_are_refused(world: World) -> None:
    assert world.get("/api/fleet", Host="evil.example:8780")[0] == 421
    assert world.get("/api/fleet", Host="localhost")[0] == 200
