"""``tuner check``: validate rule files and configuration files, each problem located.

Files named together are checked as one rule base too: a rule name used in two of
them is reported, as the daemon would refuse it.  A folder without ``*.yaml`` files is
a problem, not a silent success.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tuner.cli.arguments import say
from tuner.domain.errors import ConfigError, Problem
from tuner.engine.rulefiles import RuleBase, parse_rules, yaml_files
from tuner.engine.yamlfiles import load_yaml, read_text


def check_file(path: Path) -> tuple[list[Problem], RuleBase | None]:
    """Validate a rule file or a configuration file, told apart by their content.

    Returns the problems, and the rules when the file is a valid rule file.
    """
    try:
        text = read_text(path)
        data, _ = load_yaml(text, str(path))
        rules = data.get("rules") if isinstance(data, dict) else None
        is_rule_file = isinstance(rules, list) and any(isinstance(r, dict) for r in rules)
        if is_rule_file or (isinstance(data, dict) and "version" in data):
            return [], parse_rules(text, str(path))
        from tuner.daemon.config import parse_config
        from tuner.daemon.reloading import RuleSource
        from tuner.daemon.wiring import check_rule_channels, notify_settings, provider_settings

        config = parse_config(text, str(path))
        provider_settings(config)
        channels = set(notify_settings(config).channels)
        check_rule_channels(RuleSource(config.rule_paths()), channels)
    except ConfigError as exc:
        return exc.problems, None
    return [], None


def check_paths(paths: Sequence[str | Path]) -> tuple[list[Problem], int]:
    """Validate files and folders; the problems and how many files were checked."""
    problems: list[Problem] = []
    first: dict[str, tuple[str, int]] = {}
    seen: set[Path] = set()
    for name in paths:
        path = Path(name)
        files = yaml_files([path])
        if path.is_dir() and not files:
            problems.append(Problem(str(path), None, "no rule files found (*.yaml)"))
            continue
        for f in files:
            if f.resolve() in seen:  # a file named twice (itself and in its folder)
                continue
            seen.add(f.resolve())
            found, base = check_file(f)
            problems.extend(found)
            for rule in base.rules if base else ():
                if rule.name in first:
                    source, line = first[rule.name]
                    problems.append(
                        Problem(
                            rule.source,
                            rule.line,
                            f"duplicate rule name (also at {source}:{line})",
                            rule.name,
                            "name",
                        )
                    )
                else:
                    first[rule.name] = (rule.source, rule.line)
    return problems, len(seen)


def cmd_check(args: argparse.Namespace) -> int:
    """Validate files; exit 0 when all are valid, 2 with ``file:line`` errors otherwise."""
    problems, checked = check_paths(args.paths)
    for p in problems:
        print(p, file=sys.stderr)
    if not problems:
        say(f"ok: {checked} file(s) valid")
    return 2 if problems else 0


def register(sub: Any) -> None:
    """Add ``check`` to the ``tuner`` command's subparsers."""
    check = sub.add_parser("check", help="validate rule or configuration files")
    check.add_argument("paths", nargs="+", help="rule files, configuration files or folders")
    check.set_defaults(fn=cmd_check)
