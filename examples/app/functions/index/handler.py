"""Adds an image's name and tags to the search index."""


def tokenize(name, tags):
    """Lower-case search terms from the file name and the tags."""
    stem = name.rsplit(".", 1)[0]
    return sorted({stem.lower(), *(tag.lower() for tag in tags)})


def handler(event, context):
    terms = tokenize(event["name"], event.get("tags", []))
    for term in terms:
        context.dependency("search-db").get(f"/terms/{term}")
    return {"name": event["name"], "terms": len(terms)}
