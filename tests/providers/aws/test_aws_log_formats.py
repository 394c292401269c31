"""Real-world Lambda log lines through the provider on moto's server, and what rules make of them.

The lines come from public sources (cited in test_aws_reports.py); here they travel
through CloudWatch Logs (moto) and the provider's observation into facts and findings.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

from aws_world import QUIET_EVERY, AwsWorld
from test_aws_reports import INSIGHTS, SAM_IMPORT_ERROR, SNAPSTART

from tuner.daemon.config import bundled_rules
from tuner.engine import Streaks, build_facts, evaluate, load_rules
from tuner.providers.aws import AwsProvider
from tuner.providers.aws.logs import INSIGHTS_GROUP


def put_insights_events(world: AwsWorld, when: float, events: list[str]) -> None:
    """Write Lambda Insights performance events into the shared Insights group."""
    logs = world.client("logs")
    if not logs.describe_log_groups(logGroupNamePrefix=INSIGHTS_GROUP)["logGroups"]:
        logs.create_log_group(logGroupName=INSIGHTS_GROUP)
    logs.create_log_stream(logGroupName=INSIGHTS_GROUP, logStreamName="insights")
    logs.put_log_events(
        logGroupName=INSIGHTS_GROUP,
        logStreamName="insights",
        logEvents=[{"timestamp": int(when * 1000) + i, "message": e} for i, e in enumerate(events)],
    )


def test_real_lines_become_facts_and_only_the_init_rule_fires(
    world: AwsWorld, make_provider: Callable[..., AwsProvider]
) -> None:
    when = time.time() - 120
    world.create_function("broken-fn", memory_mb=3008, timeout_s=30)
    world.put_metrics("broken-fn", when, Invocations=1, Errors=1, Duration=1713.36)
    world.put_log_lines("broken-fn", when, SAM_IMPORT_ERROR)

    world.create_function("snap-fn", memory_mb=3009, timeout_s=30)
    world.put_metrics("snap-fn", when, Invocations=1, Errors=1, Duration=2338.66)
    world.put_log_lines("snap-fn", when, [SNAPSTART])

    world.create_function("cpu-intensive", memory_mb=256, timeout_s=45)
    world.put_metrics("cpu-intensive", when, Invocations=1, Errors=1, Duration=45191.0)
    world.put_insights("cpu-intensive", when, used_memory_max=63.0)
    start = "START RequestId: 12345678-8bcc-42f7-b1de-123456789012 Version: Blue"
    world.put_log_lines("cpu-intensive", when, [start])
    other = json.loads(INSIGHTS) | {"function_name": "someone-else", "request_id": "x"}
    put_insights_events(world, when, [INSIGHTS, json.dumps(other)])

    provider = make_provider(rightsizing_every_cycles=QUIET_EVERY)
    targets = {t.ref.name: t for t in provider.targets()}
    end = time.time()
    facts = {
        ref.name: f for ref, f in provider.observe(list(targets.values()), end - 600, end).items()
    }

    broken = facts["broken-fn"]
    assert (broken.init_errors, broken.ooms, broken.timeouts) == (2, 0, 0)
    snap = facts["snap-fn"]
    assert snap.duration_max_ms == 2338.66 and snap.cold_starts == 1
    insights = facts["cpu-intensive"]
    assert (insights.timeouts, insights.ooms, insights.cold_starts) == (1, 0, 1)
    assert insights.extra["log_reports"] == 1.0  # the other function's event is not its own

    rules = load_rules([bundled_rules()])
    target = targets["broken-fn"]
    found, _ = evaluate(rules, target, build_facts(target, broken, {}), Streaks(), end)
    assert [f.rule for f in found] == ["init-failure"]
