"""The demo functions in examples/local misbehave as documented, and one change fixes each."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from local_world import WallClock
from test_local_remedies import wait_for_chain

from tuner.domain.errors import ConfigError
from tuner.providers.local import Settings, build, resolve_functions_dir
from tuner.providers.local.host import FunctionHost
from tuner.providers.local.specs import load_dependencies, load_functions

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "local"


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[FunctionHost]:
    """The demo functions on a started host, without traffic."""
    host = FunctionHost(EXAMPLES, tmp_path / "state", WallClock())
    host.start()
    yield host
    host.close()


def peak_of_last(host: FunctionHost, name: str) -> float | None:
    return host.records.invocations([name], 0, time.time() + 1)[-1].peak_memory_mb


def test_the_demo_declares_seven_kinds_of_function_and_their_dependencies(tmp_path: Path) -> None:
    host = FunctionHost(EXAMPLES, tmp_path / "state", WallClock())
    try:
        assert host.functions() == [
            "catalog-index",
            "checkout",
            "greeter",
            "ledger-sync",
            "month-close",
            "price-lookup",
            "refund-notifier",
            "report-builder",
        ]
        assert all(spec.owner and spec.labels for spec in host.specs.values())
    finally:
        host.close()
    dependencies = load_dependencies(EXAMPLES)
    assert dependencies["catalog-db"].latency_ms == 300 and dependencies["payments-api"].down


def test_report_builder_runs_out_of_memory_and_fits_after_doubling(demo: FunctionHost) -> None:
    assert demo.invoke("report-builder", {"pages": 44}).outcome == "oom"
    assert peak_of_last(demo, "report-builder") == 128.0

    demo.deploy("report-builder", replace(demo.config("report-builder"), memory_mb=256))

    assert demo.invoke("report-builder", {"pages": 44}).outcome == "ok"
    peak = peak_of_last(demo, "report-builder")
    assert peak is not None and 170 <= peak <= 215


def test_month_close_times_out_at_its_ceiling_until_it_hands_over(demo: FunctionHost) -> None:
    event = {"month": "2026-11", "accounts": 48}
    assert demo.invoke("month-close", event).outcome == "timeout"
    demo.deploy("month-close", replace(demo.config("month-close"), handover_s=0.2))

    handed = demo.invoke("month-close", event).result["handed_over"]

    chain = wait_for_chain(demo, handed["chain"])
    assert chain.status == "done" and 3 <= chain.links <= 4
    assert chain.result["accounts"] == 48


def test_catalog_index_runs_out_of_memory_at_its_ceiling_until_it_splits(
    demo: FunctionHost,
) -> None:
    event = {"import": "i-1", "pages": list(range(1, 41))}
    assert demo.invoke("catalog-index", event).outcome == "oom"
    demo.deploy("catalog-index", replace(demo.config("catalog-index"), fan_out=4))

    merged = demo.invoke("catalog-index", event)

    assert merged.outcome == "ok", merged.error
    assert merged.result["pages"] == 40 and merged.result["bytes"] == 40 * 9 * 1024 * 1024


def test_ledger_sync_times_out_on_full_batches_and_not_on_half_ones(demo: FunctionHost) -> None:
    records = [{"id": i} for i in range(100)]

    assert demo.invoke("ledger-sync", records).outcome == "timeout"
    halved = demo.invoke("ledger-sync", records[:50])

    assert halved.outcome == "ok" and halved.result == list(range(50))
    assert halved.duration_ms < 0.8 * 3000


def test_price_lookup_is_slow_until_its_cache_is_on(demo: FunctionHost) -> None:
    event = {"product": "p-100"}
    slow = [demo.invoke("price-lookup", event).duration_ms for _ in range(2)]
    demo.deploy("price-lookup", replace(demo.config("price-lookup"), cache_ttl_s=300))

    cached = [demo.invoke("price-lookup", event) for _ in range(3)]

    assert min(slow) >= 250
    assert [c.result["cached"] for c in cached] == [False, True, True]
    assert max(c.duration_ms for c in cached[1:]) < 50


@pytest.mark.parametrize("name", ["checkout", "refund-notifier"])
def test_the_payment_functions_fail_on_their_down_dependency(demo: FunctionHost, name: str) -> None:
    event = {"cart": "c-1"} if name == "checkout" else {"refund": "r-1"}

    result = demo.invoke(name, event)

    assert result.outcome == "error" and "payments-api" in result.error
    [call] = demo.records.dependency_calls([name], 0, time.time() + 1)
    assert call.name == "payments-api" and call.error


def test_greeter_is_healthy(demo: FunctionHost) -> None:
    result = demo.invoke("greeter", {"name": "Ada"})

    assert result.outcome == "ok" and result.result == {"greeting": "Hello, Ada!"}
    assert (peak_of_last(demo, "greeter") or 0) < 64


def test_functions_dir_is_found_from_the_checkout_when_not_in_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)

    assert resolve_functions_dir(Path("examples/local")) == EXAMPLES
    with pytest.raises(ConfigError, match="functions_dir"):
        resolve_functions_dir(Path("examples/missing"))


def test_settings_forbid_unknown_options() -> None:
    with pytest.raises(ValueError):
        Settings.model_validate({"type": "local", "functions": "x"})
    assert Settings().model_dump()["type"] == "local"


@pytest.mark.slow
def test_every_problem_shows_in_the_first_window_of_demo_traffic(tmp_path: Path) -> None:
    provider = build(
        Settings(state_dir=tmp_path / "state", http_port=None, traffic=True), clock=WallClock()
    )
    start = time.time()
    with provider:
        time.sleep(5.0)
        facts = {
            ref.name: f
            for ref, f in provider.observe(provider.targets(), start, time.time()).items()
        }

    assert facts["report-builder"].ooms
    assert facts["ledger-sync"].timeouts
    assert (facts["price-lookup"].dependencies["catalog-db"].latency_p95_ms or 0) >= 250
    for name in ("checkout", "refund-notifier"):
        payments = facts[name].dependencies["payments-api"]
        assert payments.calls and payments.errors == payments.calls
    greeter = facts["greeter"]
    assert greeter.invocations and greeter.errors == 0


def test_broken_declarations_are_located_problems_not_crashes(tmp_path: Path) -> None:
    function = tmp_path / "functions" / "resize"
    function.mkdir(parents=True)
    (function / "handler.py").write_text("def handler(event, context):\n    return event\n")
    (function / "function.yaml").write_bytes(b"memory_mb: 128\nowner: caf\xe9@example.com\n")
    (tmp_path / "dependencies.yaml").write_text(
        'a: &a ["x","x","x","x","x","x","x","x","x","x"]\n'
        + "".join(
            f"{n}: &{n} [" + ",".join([f"*{p}"] * 10) + "]\n"
            for p, n in zip("abcdef", "bcdefg", strict=True)
        )
    )
    with pytest.raises(ConfigError) as err:
        load_functions(tmp_path)
    assert [str(p) for p in err.value.problems] == [
        f"{function / 'function.yaml'}:2: not UTF-8: byte 0xe9 at column 11"
    ]
    with pytest.raises(ConfigError, match="aliases expand to more than"):
        load_dependencies(tmp_path)


def test_bad_function_folders_are_refused_at_load_with_the_reason_and_path(
    tmp_path: Path,
) -> None:
    functions = tmp_path / "functions"
    for name, files in {
        "my func": ("handler.py", "function.yaml"),
        "-dash": ("handler.py", "function.yaml"),
        "no-handler": ("function.yaml",),
        "no-declaration": ("handler.py",),
        "fine": ("handler.py", "function.yaml"),
        "shared": ("helpers.py",),  # not a function: left alone
        "__pycache__": ("handler.py",),
    }.items():
        (functions / name).mkdir(parents=True)
        for file in files:
            (functions / name / file).write_text("def handler(event, context):\n    pass\n")
    (functions / "fine" / "function.yaml").write_text("memory_mb: 128\n")

    with pytest.raises(ConfigError) as refused:
        load_functions(tmp_path)

    assert sorted(str(p) for p in refused.value.problems) == sorted(
        [
            f"{functions / '-dash'}: '-dash' is not a function name: use letters, digits,"
            " '.', '_' and '-', beginning with a letter or digit, at most 64",
            f"{functions / 'my func'}: 'my func' is not a function name: use letters, digits,"
            " '.', '_' and '-', beginning with a letter or digit, at most 64",
            f"{functions / 'no-declaration'}: has a handler.py but no function.yaml",
            f"{functions / 'no-handler'}: has a function.yaml but no handler.py",
        ]
    )
