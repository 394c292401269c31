"""Benchmark of hostile YAML input: what refusing an alias bomb or a huge file costs, and
how long the largest accepted rule file takes to load.

Targets: an alias bomb is refused in < 100 ms with < 10 MB of peak allocation; a 50 MB
file in < 10 ms; a 1 MB rule file (the default cap) loads in < 30 s.
Run: ``python bench/bench_yaml_input.py [--quick] [--json FILE]``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
import tracemalloc
from pathlib import Path

from tuner.domain.errors import ConfigError
from tuner.engine import load_rules
from tuner.engine.yamlfiles import MAX_FILE_BYTES, load_yaml, read_text

RULE = """\
  - name: rule-{i}
    description: Rule number {i} of a large generated file.
    match: {{name: "fn-{i}-*"}}
    when: ooms > 0.0 && invocations > {i}.0
    actions:
      - action: more-memory
        margin: 0.2
    cooldown: 10m
"""


def alias_bomb() -> str:
    """The 'billion laughs' document: 9 levels of 9 aliases, 9**9 strings when expanded."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def refuse_bomb() -> tuple[float, float, int]:
    """Seconds and peak MB to refuse the bomb, and its size in bytes."""
    text = alias_bomb()
    tracemalloc.start()
    started = time.perf_counter()
    try:
        load_yaml(text, "bomb.yaml")
    except ConfigError:
        pass
    else:
        raise SystemExit("the alias bomb was accepted")
    elapsed = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 1e6, len(text)


def refuse_large(folder: Path, size: int) -> float:
    """Seconds to refuse a real file of ``size`` bytes."""
    big = folder / "big.yaml"
    line = RULE.format(i=0).encode()
    with big.open("wb") as f:
        f.write(b"rules:\n")
        f.write(line * (size // len(line) + 1))
    started = time.perf_counter()
    try:
        read_text(big)
    except ConfigError:
        pass
    else:
        raise SystemExit("the large file was accepted")
    return time.perf_counter() - started


def load_largest(folder: Path, size: int) -> tuple[float, int]:
    """Seconds to load a rule file just under ``size`` bytes, and its rule count."""
    path = folder / "rules.yaml"
    parts = ["rules:\n"]
    total, i = len(parts[0]), 0
    while True:
        rule = RULE.format(i=i)
        if total + len(rule) > size:
            break
        parts.append(rule)
        total += len(rule)
        i += 1
    path.write_text("".join(parts))
    started = time.perf_counter()
    base = load_rules([path])
    return time.perf_counter() - started, len(base)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller files, seconds in all")
    parser.add_argument("--json", help="also write the figures to this JSON file")
    args = parser.parse_args()
    load_size = 100_000 if args.quick else MAX_FILE_BYTES
    huge = 5_000_000 if args.quick else 50_000_000
    bomb_s, bomb_mb, bomb_bytes = refuse_bomb()
    with tempfile.TemporaryDirectory() as tmp:
        huge_s = refuse_large(Path(tmp), huge)
        load_s, rules = load_largest(Path(tmp), load_size)
    figures = {
        "alias_bomb_bytes": bomb_bytes,
        "alias_bomb_refused_ms": round(bomb_s * 1000, 2),
        "alias_bomb_peak_mb": round(bomb_mb, 2),
        "huge_file_bytes": huge,
        "huge_file_refused_ms": round(huge_s * 1000, 3),
        "largest_file_bytes": load_size,
        "largest_file_rules": rules,
        "largest_file_load_s": round(load_s, 2),
    }
    print(
        f"alias bomb ({bomb_bytes} bytes) refused in {bomb_s * 1000:.2f} ms, "
        f"peak {bomb_mb:.2f} MB  (target < 100 ms, < 10 MB)"
    )
    print(f"{huge:,}-byte file refused in {huge_s * 1000:.3f} ms  (target < 10 ms)")
    print(f"{load_size:,}-byte rule file ({rules} rules) loaded in {load_s:.2f} s  (target < 30 s)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
