"""Indexes the pages of a catalogue import: each page's text is held until the index is built."""

from tuner_handler import split

PAGE_BYTES = 9 * 1024 * 1024  # one page's extracted text and its postings


def extract(page):
    """A page's text (a stand-in for fetching and parsing it)."""
    return bytes([page % 251]) * PAGE_BYTES


@split("pages")
def handler(event, context):
    texts = [extract(page) for page in event["pages"]]
    return {
        "import": event["import"],
        "pages": len(texts),
        "bytes": sum(len(text) for text in texts),
        "checksum": sum(text[0] for text in texts),
    }
