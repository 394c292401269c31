"""What every command shares: its configuration, argument types and how it prints."""

from __future__ import annotations

import argparse
import sys

from tuner.daemon.addresses import parse_address
from tuner.daemon.config import TunerConfig, load_config
from tuner.domain.durations import parse_duration

DEMO_INTERVAL_S = 10.0
CONFIG_HELP = "tuner.yaml (default: the embedded local host and bundled rules)"


def command_config(path: str | None, *, quiet: bool = False) -> TunerConfig:
    """The configuration a command runs with: the file given, or the embedded default."""
    config = load_config(path)
    if path is not None and "providers" not in config.model_fields_set and not quiet:
        print(
            f"{path}: no 'providers': running the embedded local host "
            "(add 'providers:' to watch AWS, Kubernetes or your own functions)",
            file=sys.stderr,
        )
    if path is None:
        # The embedded default: short windows and a short group wait, so the demo shows
        # its results and messages within a minute.
        config = config.model_copy(
            update={"interval": DEMO_INTERVAL_S, "routing": {"group_wait": DEMO_INTERVAL_S / 2}}
        )
    return config


def say(text: str = "") -> None:
    """Print a line for people on stdout, at once."""
    print(text, flush=True)


def duration(text: str) -> float:
    """An argparse type: seconds from ``90s``, ``10m``, ``2h`` (a usage error otherwise)."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if not isinstance(seconds, float) or seconds <= 0:
        raise argparse.ArgumentTypeError(f"not a positive duration: {text!r}")
    return seconds


def count(text: str) -> int:
    """An argparse type: a whole number, 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"not a whole number of 1 or more: {text!r}")
    return int(text)


def address(text: str) -> tuple[str, int] | None:
    """An argparse type: ``HOST:PORT`` or ``off`` (a usage error otherwise)."""
    try:
        return parse_address(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
