"""What every command shares: its configuration, argument types and how it prints."""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

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


def positive(text: str) -> float:
    """An argparse type: a finite number above 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"not a finite number above 0: {text!r}")
    return value


def output_file(text: str) -> str:
    """An argparse type: a file to write, in a folder that exists (``-``: standard output)."""
    if text == "-":
        return text
    try:
        path = _path(text)
        if path.is_dir():
            raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
        folder = path.parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"{text}: the folder {folder} does not exist")
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"not a usable file name: {exc.strerror}") from None
    if not os.access(folder, os.W_OK):
        raise argparse.ArgumentTypeError(f"{text}: the folder {folder} is not writable")
    return text


def existing_path(text: str) -> str:
    """An argparse type: a file or folder that exists."""
    try:
        if not _path(text).exists():
            raise argparse.ArgumentTypeError(f"{text}: no such file or folder")
    except OSError as exc:
        raise argparse.ArgumentTypeError(f"not a usable file name: {exc.strerror}") from None
    return text


def _path(text: str) -> Path:
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError(f"not a file name: {text[:60]!r}")
    return Path(text)
