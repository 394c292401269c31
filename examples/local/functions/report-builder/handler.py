"""Renders a report: every page is rasterised into one canvas before it is encoded."""

PAGE_BYTES = 4 * 1024 * 1024  # one A4 page at 150 dpi, 32-bit colour, rounded


def handler(event, context):
    pages = int(event.get("pages", 44))
    canvas = bytearray(pages * PAGE_BYTES)
    for page in range(pages):
        ink = bytes([page % 251 + 1]) * PAGE_BYTES
        canvas[page * PAGE_BYTES : (page + 1) * PAGE_BYTES] = ink
    context.logger.info("rendered %d pages for %s", pages, event.get("month"))
    return {"month": event.get("month"), "pages": pages, "bytes": len(canvas)}
