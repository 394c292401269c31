"""Traces, profiles and topology: what the tracing executor saw, in standard formats.

An adapter around the core: :mod:`tuner.trace.model` holds the trace values, and the
other modules turn stored traces into folded stacks, SVG flame graphs, speedscope files,
OpenTelemetry spans and the application's topology.
"""
