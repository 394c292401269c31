"""Returns a product's price; the catalogue is slow, so answers are cached when allowed."""


def handler(event, context):
    product = event["product"]
    key = f"price:{product}"
    entry = context.cache.get(key)
    cached = entry is not None
    if entry is None:
        entry = context.dependency("catalog-db").get(f"/products/{product}")
        context.cache.set(key, entry)
    return {"product": product, "cached": cached, "source": entry}
