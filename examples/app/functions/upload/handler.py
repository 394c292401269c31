"""Receives an image: checks it, stores it, then calls resize and index through the host."""


def checksum(pixels):
    """A small rolling checksum over the image's pixels."""
    total = 0
    for value in pixels:
        total = (total * 31 + value) % 1_000_003
    return total


def receive(event):
    """The image's pixels, as the client sent them."""
    width, height = int(event["width"]), int(event["height"])
    return [(x * 7 + y * 13) % 256 for y in range(height) for x in range(width)]


def handler(event, context):
    pixels = receive(event)
    digest = checksum(pixels)
    context.dependency("object-store").get(f"/objects/{event['name']}")
    thumbnail = context.invoke("resize", {"name": event["name"], "width": event["width"],
                                          "height": event["height"], "pixels": pixels})
    indexed = context.invoke("index", {"name": event["name"], "tags": event.get("tags", [])})
    return {"name": event["name"], "checksum": digest, "thumbnail": thumbnail, "indexed": indexed}
