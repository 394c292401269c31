"""The audit store: decisions, change intents and loop state in one SQLite file."""
