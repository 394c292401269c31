"""The domain: value types, a decision's life, the ports, errors, durations and registries.

Standard library (and pydantic for typed settings) only: every other package speaks in these types."""
