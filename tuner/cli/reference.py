"""``tuner schema`` and ``tuner facts``: the rule files' JSON Schema and the fact reference."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from tuner.cli.arguments import output_file, say
from tuner.engine.reference import EXTRA_FACTS, FACTS
from tuner.engine.rulefiles import rules_schema

SCHEMA_PATH = Path("rules/schema.json")


def schema_text() -> str:
    """The rule-file JSON Schema as it is written to ``rules/schema.json``."""
    return json.dumps(rules_schema(), indent=2, sort_keys=True) + "\n"


def cmd_schema(args: argparse.Namespace) -> int:
    """Write (or check) the rule-file JSON Schema."""
    text = schema_text()
    target = Path(args.output)
    if args.check:
        current = target.read_text(encoding="utf-8") if target.exists() else ""
        if current != text:
            print(f"{target} is stale: run 'tuner schema'", file=sys.stderr)
            return 1
        say(f"{target} is current")
        return 0
    if args.output == "-":
        sys.stdout.write(text)
    else:
        target.write_text(text, encoding="utf-8")
        say(f"wrote {target}")
    return 0


def cmd_facts(args: argparse.Namespace) -> int:
    """Print the fact reference: every name a condition may use."""
    for name, doc in {**FACTS, **{f"extra.{n}": d for n, d in EXTRA_FACTS.items()}}.items():
        unit = f" [{doc.unit}]" if doc.unit else ""
        say(f"{name:30} {doc.type.value:7}{unit:9} {doc.doc}")
    return 0


def register(sub: Any) -> None:
    """Add ``schema`` and ``facts`` to the ``tuner`` command's subparsers."""
    schema = sub.add_parser("schema", help="write the rule-file JSON Schema")
    schema.add_argument(
        "-o",
        "--output",
        default=str(SCHEMA_PATH),
        type=output_file,
        help=f"where to (default {SCHEMA_PATH}; - for stdout)",
    )
    schema.add_argument("--check", action="store_true", help="fail when the file is stale")
    schema.set_defaults(fn=cmd_schema)
    facts = sub.add_parser("facts", help="list the facts a rule condition may use")
    facts.set_defaults(fn=cmd_facts)
