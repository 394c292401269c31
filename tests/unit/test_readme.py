"""The README a newcomer reads first: its fences, its figures and its commands agree with the code."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BENCH_README = (ROOT / "bench" / "README.md").read_text(encoding="utf-8")
ENGINE_FIGURE = re.compile(r"([\d.]+(?:-[\d.]+)?) million condition evaluations/s")


def test_every_code_fence_is_closed() -> None:
    fences = [line for line in README.splitlines() if line.lstrip().startswith("```")]
    openings, closings = fences[0::2], fences[1::2]
    assert len(fences) % 2 == 0, "a code fence is never closed"
    assert all(line.strip() == "```" for line in closings), "a fence closes with a language"
    assert len(openings) == len(closings)


def test_the_python_it_asks_for_is_the_one_the_package_requires() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    required = project["requires-python"].removeprefix(">=")
    assert f"Python {required} or newer" in README


def test_the_engine_figure_is_the_one_the_benchmark_recorded() -> None:
    in_readme = ENGINE_FIGURE.findall(README)
    in_bench = ENGINE_FIGURE.findall(BENCH_README)
    assert len(in_readme) == 1, f"the README gives {len(in_readme)} engine figures"
    assert in_bench, "bench/README.md records no engine figure"
    assert in_readme[0] == in_bench[-1]


def test_ci_builds_its_own_venv_and_leaves_the_readmes_alone() -> None:
    script = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    removed = re.findall(r"^rm -rf (\S+)", script, flags=re.MULTILINE)
    venv = re.search(r"^venv=(\S+)$", script, flags=re.MULTILINE)
    assert venv is not None and venv.group(1) != ".venv"
    assert removed and all(path in ('"$venv"', venv.group(1)) for path in removed)
    assert ".venv/bin/tuner run" in README, "the README's first command uses .venv"
