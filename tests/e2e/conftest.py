"""One run of the README's first command for every module that reads what it left behind."""

from __future__ import annotations

import pytest

from tests.e2e.demo_run import DemoRun, run_demo


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``tuner run --for 45s --fresh`` in a scratch folder (45 s of the demo, for real)."""
    return run_demo(tmp_path_factory.mktemp("demo"))
