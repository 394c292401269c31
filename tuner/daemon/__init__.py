"""The daemon: one cycle, applying changes, its schedule, its wiring, and what a person may do by hand."""
