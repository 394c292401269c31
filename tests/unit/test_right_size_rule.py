"""The bundled right-size rule fires where its action can save, from the evidence it sizes on."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tuner.engine import load_rules

ROOT = Path(__file__).resolve().parents[2]


def holds(
    memory: float,
    peak: float,
    invocations: float = 900.0,
    cpu_time_share: float | None = None,
    **extra: float,
) -> bool | None:
    rules = {r.name: r for r in load_rules([ROOT / "rules" / "default.yaml"]).rules}
    facts: dict[str, Any] = {
        "memory_mb": memory,
        "ooms": 0.0,
        "invocations": invocations,
        "peak_memory_mb": peak,
        "memory_utilisation": peak / memory,
        "cpu_time_share": cpu_time_share,
        "extra": extra,
    }
    result: bool | None = rules["right-size"].condition.evaluate(facts)
    return result


def fires(memory: float, peak: float, **extra: float) -> bool:
    return holds(memory, peak, **extra) is True


def test_a_leak_well_used_in_every_window_is_right_sized_from_its_growing_part() -> None:
    # A worker starts at 816 MB and grows to 920 MB: 84% of 1,088 MB in every window, and
    # 930 MB (10% more growth) saves 14%.
    leak = {"worker_start_memory_mb": 816.0, "lookback_peak_memory_mb": 920.0}
    assert fires(1088, 920.0, **leak)
    assert not fires(1024, 920.0, **leak)  # 930 MB would save 9%


def test_a_payload_function_is_right_sized_over_its_payload_part() -> None:
    model = {
        "memory_base_mb": 162.0,
        "memory_mb_per_payload_kb": 1.2,
        "lookback_peak_memory_mb": 1093.0,
    }
    assert fires(1340, 900.0, **model)  # 1,186 MB saves 11.5%
    assert not fires(1280, 900.0, **model)  # 1,186 MB would save 7%


def test_a_bare_peak_keeps_the_margin_over_all_of_it() -> None:
    assert not fires(1150, 900.0, lookback_peak_memory_mb=950.0)  # 1,045 MB saves 9%
    assert fires(1200, 900.0, lookback_peak_memory_mb=950.0)  # 1,045 MB saves 13%


def test_without_a_lookback_the_window_must_use_under_82_percent() -> None:
    assert fires(1000, 810.0)
    assert not fires(1000, 830.0)


def test_a_quiet_window_neither_counts_nor_breaks_the_streak() -> None:
    # A night of a function busy by day: 5 invocations tell nothing either way (null).
    assert holds(2000, 800.0, invocations=5.0, lookback_peak_memory_mb=850.0) is None
    assert holds(900, 800.0, invocations=5.0, lookback_peak_memory_mb=850.0) is False


def test_a_function_mostly_on_cpu_is_left_to_the_cheapest_size_rule() -> None:
    assert holds(2000, 800.0, cpu_time_share=0.4, lookback_peak_memory_mb=850.0) is True
    assert holds(2000, 800.0, cpu_time_share=0.7, lookback_peak_memory_mb=850.0) is False
