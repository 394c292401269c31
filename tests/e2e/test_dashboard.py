"""The dashboard in a real browser, against ``tuner run`` on the local host's demo functions.

One daemon serves the whole module (``tuner run --fresh`` in a scratch folder); Debian's
chromium-headless-shell, driven by Playwright, opens the pages a person would open.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.safety.harness import default_rules

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium-headless-shell")
DEMO = (
    "report-builder",
    "ledger-sync",
    "price-lookup",
    "checkout",
    "refund-notifier",
    "greeter",
    "month-close",
    "catalog-index",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def _states(url: str) -> dict[str, str]:
    return {r["name"]: r["state"] for r in _get(url + "/api/fleet")["rows"]}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cwd = tmp_path_factory.mktemp("dashboard")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tuner.cli.main",
            "run",
            "--fresh",
            "--for",
            "150s",
            "--interval",
            "4s",
            "--http",
            f"127.0.0.1:{port}",
        ],
        cwd=cwd,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                states = _states(url)
                if (
                    states.get("report-builder") in ("verifying", "changed")
                    and len(states) == len(DEMO)
                    and states.get("checkout") == "outage"
                ):
                    break
            except OSError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.5)
        else:
            pytest.fail(f"the demo did not reach its states: {_states(url)}")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0, out[-3000:]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.skip(
            "no Chromium: install Debian's chromium-headless-shell to run the browser tests"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM)
        try:
            yield b
        finally:
            b.close()


def test_the_fleet_page_shows_the_demo_functions_with_their_states(
    daemon: str, browser: Any
) -> None:
    page = browser.new_page()
    page.goto(daemon + "/")
    rows = page.locator("#fleet tbody tr")
    assert rows.count() == len(DEMO)
    seen = {
        row.locator("td").nth(0).inner_text().strip(): row.locator("td").nth(2).inner_text().strip()
        for row in rows.all()
    }
    assert set(seen) == set(DEMO)
    assert seen["report-builder"] in ("verifying", "changed")
    assert seen["checkout"] == seen["refund-notifier"] == "outage"
    assert seen["greeter"] in ("healthy", "watched")
    # the search filters live, in the browser, without a reload
    from playwright.sync_api import expect

    page.fill("#q", "refund")
    expect(rows).to_have_count(1)
    assert "refund-notifier" in page.locator("#fleet tbody").inner_text()
    page.select_option("#state", "outage")
    page.fill("#q", "")
    expect(rows).to_have_count(2)
    assert "outage" in page.url
    page.close()


def test_report_builder_shows_its_memory_change_and_chart(daemon: str, browser: Any) -> None:
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(daemon + "/")
    page.click("text=report-builder")
    page.wait_for_url("**/functions/**report-builder")
    decisions = page.locator("#decisions").inner_text()
    assert re.search(r"memory_mb 128 → \d+", decisions) and "oom" in decisions
    page.wait_for_selector("#chart-memory canvas")
    chart = page.locator("#chart-memory")
    deadline = time.monotonic() + 30  # the fleet's states can come a cycle before a second point
    while int(chart.get_attribute("data-points") or 0) < 2:
        assert time.monotonic() < deadline, "the memory chart has fewer than two points"
        time.sleep(1)
        page.reload()
        page.wait_for_selector("#chart-memory canvas")
    assert int(chart.get_attribute("data-markers") or 0) >= 1  # the demo may change more later
    peak, limit = (int(n) for n in (chart.get_attribute("data-values") or "0,0").split(","))
    assert peak >= 1 and limit >= 2
    assert "oom: memory_mb 128 -> " in page.locator("#chart-memory ~ .markers").inner_text()
    box = page.locator("#chart-memory canvas").bounding_box()
    assert box and box["width"] > 200 and box["height"] > 100
    assert not errors
    # the messages sent about it are listed on its page
    deadline = time.monotonic() + 30
    while not _get(daemon + "/api/functions/report-builder")["messages"]:
        assert time.monotonic() < deadline, "no message about report-builder reached the outbox"
        time.sleep(0.5)
    page.reload()
    assert "report-builder" in page.locator("#messages").inner_text()
    page.close()


def test_the_rules_page_says_why_greeter_fired_nothing(daemon: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(daemon + "/rules?function=greeter")
    oom = page.locator("#rule-oom")
    assert "did not fire" in oom.locator(".verdict").inner_text()
    assert "ooms = 0" in oom.locator("table.clauses").inner_text()
    assert "does not hold" in oom.locator("table.clauses").inner_text()
    verdicts = [v.strip() for v in page.locator(".verdict").all_inner_texts()]
    assert len(verdicts) == len(default_rules().rules) and "fired" not in verdicts
    # greeter calls no dependency: the dependency rules say "no data", never "holds"
    assert "no data" in page.locator("#rule-dependency-down").inner_text()
    page.close()


def test_metrics_parse_and_pass_promtool(daemon: str) -> None:
    deadline = time.monotonic() + 30  # the first messages go out after the group wait
    while True:
        with urllib.request.urlopen(daemon + "/metrics", timeout=5) as answer:
            text = answer.read().decode()
        families = {f.name: f for f in text_string_to_metric_families(text)}
        delivered = families.get("tuner_notifications")
        if delivered and any(s.labels.get("result") == "sent" for s in delivered.samples):
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.5)
    for name in (
        "tuner_cycles",
        "tuner_cycle_duration_seconds",
        "tuner_functions",
        "tuner_findings",
        "tuner_decisions",
        "tuner_rollbacks",
        "tuner_notifications",
        "tuner_outbox_pending",
        "tuner_provider_calls",
        "tuner_rule_reloads",
        "tuner_build_info",
    ):
        assert name in families, name
    [functions] = families["tuner_functions"].samples
    assert functions.labels == {"provider": "local"} and functions.value == len(DEMO)
    sent = [s for s in families["tuner_notifications"].samples if s.labels.get("result") == "sent"]
    assert sent, families["tuner_notifications"].samples
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("no promtool: install Debian's prometheus package")
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, timeout=30
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_greeter_s_page_explains_its_empty_panel_and_times_are_one_format(
    daemon: str, browser: Any
) -> None:
    page = browser.new_page()
    page.goto(daemon + "/functions/local:greeter")
    page.wait_for_selector("#chart-deps canvas")
    # greeter calls no dependency: its panel says so instead of staying blank
    assert page.locator("#chart-deps").get_attribute("data-empty") == "yes"
    assert "called no dependency" in page.locator("figure:has(#chart-deps) .empty").inner_text()
    # times are ISO 8601 UTC, as in the CLI and the messages
    for stamp in page.locator("time").all_inner_texts():
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", stamp), stamp
    # a setting the function does not have is not "no data"
    facts = page.locator("table.facts").inner_text()
    assert re.search(r"batch_size\s+null \(not applicable\)", facts)
    # the local host has no console page: no link that answers 401
    assert "provider console" not in page.locator("p.meta").first.inner_text()
    page.close()


MEASURE_AXES = """(id) => {
  const u = tuner.charts[id];
  const ctx = u.ctx;
  const width = (axis, text) => { ctx.font = axis.font[0]; return ctx.measureText(text).width; };
  const [x, y] = u.axes;
  return {
    y_size: y._size * devicePixelRatio,
    y_widest: Math.max(...y._values.map((v) => width(y, v))),
    x_labels: x._splits.map((s, i) => ({pos: u.valToPos(s, "x", true), w: width(x, x._values[i])})),
    y_min: u.scales.y.min,
  };
}"""
"""The uPlot axes of one chart, measured in the page (canvas pixels)."""


def test_charts_label_their_axes_in_full_without_overlap(daemon: str, browser: Any) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    page.goto(daemon + "/functions/local:report-builder")  # a 10,000 ms timeout on its chart
    deadline = time.monotonic() + 40  # a few cycles, so that the time axis has ticks to space
    while True:
        page.wait_for_selector("#chart-duration canvas")
        axes = page.evaluate(MEASURE_AXES, "chart-duration")
        if len(axes["x_labels"]) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(2)
        page.reload()
    # the y axis is wide enough for its widest label: never "0,000" for "10,000"
    assert axes["y_widest"] < axes["y_size"], axes
    labels = sorted(axes["x_labels"], key=lambda label: label["pos"])
    assert len(labels) >= 2
    for a, b in zip(labels, labels[1:], strict=False):
        assert a["pos"] + a["w"] / 2 <= b["pos"] - b["w"] / 2, labels  # no label runs into the next
    assert axes["y_min"] == 0  # from zero: a flat line does not fill the chart
    page.close()


def test_a_clause_that_holds_is_red_only_where_its_rule_fires(daemon: str, browser: Any) -> None:
    page = browser.new_page()
    page.goto(daemon + "/rules?function=greeter")
    red = "rgb(163, 38, 28)"
    colours = page.evaluate(
        """() => [...document.querySelectorAll('table.clauses tr.c-holds td:last-child')]
             .map((td) => [td.closest('table').classList.contains('alarm'),
                           getComputedStyle(td).color])"""
    )
    assert colours, "some clause holds for greeter (e.g. no probe pending)"
    assert all(colour != red for alarm, colour in colours if not alarm)
    page.close()


def test_a_grouped_message_is_listed_on_each_function_it_covers(daemon: str) -> None:
    deadline = time.monotonic() + 40
    while True:
        told = {
            n: _get(f"{daemon}/api/functions/{n}")["messages"]
            for n in ("checkout", "refund-notifier")
        }
        titles = {n: {m["title"] for m in ms} for n, ms in told.items()}
        if titles["checkout"] & titles["refund-notifier"]:
            break  # the one message about payments-api, under both functions
        assert time.monotonic() < deadline, titles
        time.sleep(1)
