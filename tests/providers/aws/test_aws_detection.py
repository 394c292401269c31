"""Failures in every runtime's words, read from the fitting part of the public corpus.

The held-out part is scored by ``bench/bench_detection.py``; here every line of the
fitting part must be read as what it shows, and the CloudWatch filter pattern tuner sends
must let every failure and report line of the corpus through, with CloudWatch's own
terms semantics (``cloudwatch_terms``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import pytest
from aws_world import AwsWorld
from cloudwatch_terms import matches, parse

from tests.corpus import LambdaLine, lambda_lines
from tuner.daemon.config import bundled_rules
from tuner.engine import Streaks, build_facts, evaluate, load_rules
from tuner.providers.aws import AwsProvider
from tuner.providers.aws.reports import FILTER_PATTERN, LogSummary, summarize

FAILURES = ("oom", "timeout", "init_timeout", "init_failure")


def kind_read(summary: LogSummary) -> str:
    """The one kind a single line's summary shows (none when it shows no failure)."""
    shown = [
        kind
        for kind, count in (
            ("oom", summary.ooms),
            ("timeout", summary.timeouts),
            ("init_timeout", summary.init_timeouts),
            ("init_failure", summary.init_errors),
        )
        if count
    ]
    assert len(shown) <= 1, shown
    return shown[0] if shown else "none"


FITTING = [line for line in lambda_lines("fitting") if line.batch == 1]


@pytest.mark.parametrize("line", FITTING, ids=lambda line: line.source[19:70])
def test_every_fitting_line_is_read_as_what_it_shows(line: LambdaLine) -> None:
    expected = line.kind if line.kind in FAILURES else "none"
    assert kind_read(summarize([line.text])) == expected, line.text


# The examples of AWS's "Filter pattern syntax" page (cloudwatch_terms.DOCUMENT).
DOCUMENTED = [
    "[ERROR 400] BAD REQUEST",
    "[ERROR 401] UNAUTHORIZED REQUEST",
    "[ERROR 419] MISSING ARGUMENTS",
    "[ERROR 420] INVALID ARGUMENTS",
    "[ERROR 500] INTERNAL SERVER ERROR",
]


@pytest.mark.parametrize(
    ("pattern", "returned"),
    [
        ("ERROR", DOCUMENTED),
        ("ERROR ARGUMENTS", DOCUMENTED[2:4]),
        ("?ERROR ?ARGUMENTS", DOCUMENTED),
        ('"INTERNAL SERVER ERROR"', DOCUMENTED[4:]),
        ("ERROR -ARGUMENTS", DOCUMENTED[:2] + DOCUMENTED[4:]),
    ],
)
def test_the_terms_semantics_follows_the_documented_examples(
    pattern: str, returned: list[str]
) -> None:
    assert [m for m in DOCUMENTED if matches(pattern, m)] == returned


def test_terms_are_whole_words_not_substrings() -> None:
    assert not matches('?"MemoryError"', "java.lang.OutOfMemoryError: Java heap space")
    assert not matches("?ERROR", "ERRORS were found")
    with pytest.raises(ValueError, match="non-alphanumeric"):
        parse("?Runtime.OutOfMemory")


def test_the_filter_pattern_lets_every_failure_and_report_of_the_corpus_through() -> None:
    wanted = [
        line for line in lambda_lines() if line.kind in FAILURES or summarize([line.text]).reports
    ]
    assert len(wanted) > 100
    dropped = [line.text for line in wanted if not matches(FILTER_PATTERN, line.text)]
    assert dropped == []
    assert len(FILTER_PATTERN) <= 1024  # CloudWatch's limit on a filter pattern


def test_a_json_report_with_some_metrics_keeps_its_duration() -> None:
    """A platform.report of a timed-out invocation may lack its memory numbers."""
    record = {
        "time": "2020-08-20T12:31:32.123Z",
        "type": "platform.report",
        "record": {
            "requestId": "6f7f0961f83442118a7af6fe80b88d56",
            "metrics": {"durationMs": 3000.51, "billedDurationMs": 3000},
            "status": "timeout",
        },
    }
    summary = summarize([json.dumps(record)])
    [report] = summary.reports
    assert (summary.malformed, summary.timeouts, report.duration_ms) == (0, 1, 3000.51)
    assert (report.max_memory_used_mb, summary.peak_memory_mb, summary.ooms) == (None, None, 0)
    record["record"]["metrics"] = {"billedDurationMs": 3000}
    assert summarize([json.dumps(record)]).malformed == 1  # no duration: nothing to keep


def test_a_json_init_report_that_timed_out_is_an_init_timeout_not_an_init_error() -> None:
    record = {"type": "platform.initReport", "record": {"phase": "init", "status": "timeout"}}
    summary = summarize([json.dumps(record)])
    assert (summary.init_timeouts, summary.init_errors, summary.timeouts) == (1, 0, 0)


def test_init_timeouts_on_aws_ask_for_more_memory_by_the_bundled_rule(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    when = time.time() - 120
    world.create_function("slow-init", memory_mb=512, timeout_s=30)
    world.put_metrics("slow-init", when, Invocations=2, Errors=2, Duration=3000.0)
    init_timeout = json.dumps(
        {"type": "platform.initReport", "record": {"phase": "init", "status": "timeout"}}
    )
    world.put_log_lines("slow-init", when, [init_timeout, init_timeout])
    provider = make_provider()
    [target] = provider.targets()
    end = time.time()
    facts = provider.observe([target], end - 600, end)[target.ref]
    assert (facts.init_errors, facts.extra["init_timeouts"]) == (0, 2.0)
    built = build_facts(target, facts, {})
    rules = load_rules([bundled_rules()])
    found, _ = evaluate(rules, target, built, Streaks(), end)
    assert "init-timeout" in [f.rule for f in found]
    assert "errors" not in [f.rule for f in found]  # the init timeouts explain the errors
    rule = rules.by_name("init-timeout")
    assert rule is not None
    plan = rule.rule.actions[0].plan(target.config, target.limits, built)
    assert plan.change is not None and (plan.change.before, plan.change.after) == (512, 1024)
