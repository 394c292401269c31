"""Greets a visitor by name."""


def handler(event, context):
    return {"greeting": f"Hello, {event.get('name', 'world')}!"}
