"""The data-latency rule names the slow dependency from the topology, on the local host for real.

price-lookup (from the examples) calls catalog-db, which answers in ~300 ms; after a few
invocations ``tuner once`` finds the rule firing, and its advice says how much of the
function's time went to catalog-db: from traces when the host traced them, else from
the dependency calls it recorded.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from tuner.cli.main import main
from tuner.providers.local import Settings, build

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "local"
INVOCATIONS = 5


@pytest.fixture(autouse=True)
def _logging_restored() -> Iterator[None]:
    """The command points the logs at this test's captured stderr: put the session's back."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


class _Clock:
    def now(self) -> float:
        return time.time()


def _app(folder: Path, tracing: str) -> Path:
    """A functions folder with price-lookup and catalog-db, and a tuner.yaml over it."""
    functions = folder / "functions"
    shutil.copytree(EXAMPLES / "functions" / "price-lookup", functions / "price-lookup")
    catalog = "catalog-db: {latency_ms: 300, jitter_ms: 20}\n"
    (folder / "dependencies.yaml").write_text(catalog)
    settings = {
        "type": "local",
        "functions_dir": str(folder),
        "state_dir": str(folder / "state"),
        "http_port": None,
        "traffic": False,
        "tracing": {"mode": tracing},
    }
    config = folder / "tuner.yaml"
    config.write_text(
        json.dumps({"interval": "60s", "providers": [settings], "store": str(folder / "tuner.db")})
    )
    provider = build(Settings.model_validate(settings), clock=_Clock())
    with provider:
        for index in range(INVOCATIONS):
            result = provider.host.invoke("price-lookup", {"product": f"p-{index}"})
            assert result.outcome == "ok", result.error
    return config


def _data_latency_advice(config: Path, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()  # what the host logged while the invocations ran
    main(["once", "-c", str(config), "--json"])
    decisions = json.loads(capsys.readouterr().out)
    [decision] = [d for d in decisions if d["rule"] == "data-latency"]
    assert decision["function"].endswith("price-lookup")
    return str(decision["advice"])


@pytest.mark.parametrize(
    ("tracing", "source"),
    [("full", "from traces"), ("off", "from the recorded calls")],
)
def test_the_advice_names_catalog_db_and_its_share(
    tracing: str, source: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    advice = _data_latency_advice(_app(tmp_path, tracing), capsys)

    found = re.search(
        r"p95 (\d+) ms, (\d+)% of it in catalog-db "
        rf"\(p95 (\d+) ms over {INVOCATIONS} calls, {source}\)",
        advice,
    )
    assert found, advice
    p95, share, dependency_p95 = (int(g) for g in found.groups())
    assert 280 <= dependency_p95 <= p95
    assert 80 <= share <= 100  # the handler does little besides waiting for catalog-db
