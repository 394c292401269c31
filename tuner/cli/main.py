"""The ``tuner`` command: one subcommand per module of this package.

With no configuration file tuner runs its embedded default: the local function host
with the example functions of ``examples/local``, the bundled rules, a SQLite store in
``.tuner/`` and notifications on the console.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from tuner import __version__
from tuner.cli import (
    checking,
    explaining,
    insight,
    profiling,
    reference,
    running,
    simulating,
)
from tuner.domain.errors import ConfigError

COMMANDS = (running, checking, explaining, insight, reference, profiling, simulating)
"""The modules that each add their commands to ``tuner``, in the order ``--help`` lists them."""


def parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tuner`` command."""
    p = argparse.ArgumentParser(
        prog="tuner", description="Autotuning daemon for serverless functions."
    )
    p.add_argument("--version", action="version", version=f"tuner {__version__}")
    sub = p.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.register(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tuner`` console script."""
    args = parser().parse_args(argv)
    try:
        code: int = args.fn(args)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # e.g. piped into head
        sys.stderr.close()
        return 0
    return code


if __name__ == "__main__":
    sys.exit(main())
