"""The command line: every ``tuner`` command."""
