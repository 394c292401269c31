"""SVG flame graphs from folded stacks, in the layout of Brendan Gregg's flamegraph.pl.

Each frame is a ``<g class="frame">`` with a ``<title>`` (``function (file:line)``, weight
and share) and a ``<rect>``; its label is drawn when it fits.  A *Search* button (a few
lines of script, as in flamegraph.pl) highlights the frames matching a regular expression
and prints the share they cover; every label is also plain text, so a viewer's own find
works too.  Written here because no maintained Python library renders folded stacks to
SVG: pyinstrument and memray render HTML pages of their own profiles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

_WIDTH = 1200
_FRAME_HEIGHT = 16
_PAD_TOP = 40
_PAD_BOTTOM = 24
_PAD_SIDE = 10
_MIN_WIDTH_PX = 0.1
_CHAR_PX = 6.5

_SCRIPT = """
function search() {
  var term = prompt("Search frames (regular expression)", "");
  var frames = document.getElementsByClassName("frame");
  var matched = 0, total = parseFloat(document.documentElement.getAttribute("data-total"));
  var re = term ? new RegExp(term) : null;
  for (var i = 0; i < frames.length; i++) {
    var g = frames[i], rect = g.getElementsByTagName("rect")[0];
    var name = g.getAttribute("data-name");
    if (!rect.hasAttribute("data-fill")) rect.setAttribute("data-fill", rect.getAttribute("fill"));
    if (re && re.test(name)) {
      rect.setAttribute("fill", "rgb(230,0,230)");
      if (g.getAttribute("data-outer") === "1") matched += parseFloat(g.getAttribute("data-weight"));
    } else {
      rect.setAttribute("fill", rect.getAttribute("data-fill"));
    }
  }
  document.getElementById("matched").textContent =
    re ? "Matched: " + (100 * matched / total).toFixed(1) + "%" : "";
}
"""


@dataclass
class _Box:
    name: str
    weight: int = 0
    children: dict[str, _Box] = field(default_factory=dict)


def _build(folded: Mapping[str, int]) -> _Box:
    root = _Box("all")
    for stack, weight in sorted(folded.items()):
        if weight <= 0:
            continue
        root.weight += weight
        node = root
        for frame in stack.split(";"):
            node = node.children.setdefault(frame, _Box(frame))
            node.weight += weight
    return root


def _depth(box: _Box) -> int:
    return 1 + max((_depth(c) for c in box.children.values()), default=0)


def _colour(name: str, palette: str) -> str:
    digest = hashlib.blake2b(name.encode(), digest_size=3).digest()
    a, b, c = digest
    if palette == "memory":  # greens, as flamegraph.pl's "mem" palette
        return f"rgb({a % 60},{190 + b % 55},{c % 55})"
    return f"rgb({205 + a % 50},{b % 230},{c % 55})"  # warm: CPU and wall time


def render_svg(
    folded: Mapping[str, int], *, title: str = "Flame graph", unit: str = "µs", palette: str = "cpu"
) -> str:
    """An SVG flame graph of the folded stacks (weights in ``unit``)."""
    root = _build(folded)
    depth = _depth(root)
    height = _PAD_TOP + depth * _FRAME_HEIGHT + _PAD_BOTTOM
    total = max(root.weight, 1)
    scale = (_WIDTH - 2 * _PAD_SIDE) / total
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{_WIDTH}" '
        f'height="{height}" viewBox="0 0 {_WIDTH} {height}" data-total="{total}" '
        f'data-unit="{escape(unit)}">',
        f'<script type="text/ecmascript"><![CDATA[{_SCRIPT}]]></script>',
        "<style>.frame text { font: 11px monospace; fill: #000; pointer-events: none; }"
        " .frame:hover rect { stroke: #000; stroke-width: 0.5; }"
        " #search { cursor: pointer; font: 12px sans-serif; }</style>",
        f'<rect x="0" y="0" width="{_WIDTH}" height="{height}" fill="#f8f8f8"/>',
        f'<text x="{_WIDTH / 2}" y="20" text-anchor="middle" font-size="16" '
        f'font-family="sans-serif">{escape(title)}</text>',
        f'<text id="search" x="{_WIDTH - _PAD_SIDE}" y="20" text-anchor="end" '
        'onclick="search()">Search</text>',
        f'<text id="matched" x="{_WIDTH - _PAD_SIDE}" y="{height - 8}" text-anchor="end" '
        'font-size="12" font-family="sans-serif"></text>',
    ]
    _draw(root, 0, _PAD_SIDE, height - _PAD_BOTTOM, scale, total, unit, palette, parts, set())
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _draw(
    box: _Box,
    level: int,
    x: float,
    bottom: float,
    scale: float,
    total: int,
    unit: str,
    palette: str,
    parts: list[str],
    open_names: set[str],
) -> None:
    width = box.weight * scale
    if width < _MIN_WIDTH_PX:
        return
    y = bottom - (level + 1) * _FRAME_HEIGHT
    share = 100 * box.weight / total
    name = escape(box.name, {'"': "&quot;"})
    outer = "0" if box.name in open_names else "1"  # recursion counts once in "Matched"
    fill = "rgb(200,200,200)" if level == 0 else _colour(box.name, palette)
    parts.append(
        f'<g class="frame" data-name="{name}" data-weight="{box.weight}" data-outer="{outer}">'
        f"<title>{escape(box.name)} ({box.weight:,} {escape(unit)}, {share:.2f}%)</title>"
        f'<rect x="{x:.2f}" y="{y:.1f}" width="{width:.2f}" height="{_FRAME_HEIGHT - 1}" '
        f'fill="{fill}" rx="2"/>'
    )
    chars = int((width - 6) / _CHAR_PX)
    if chars >= 3:
        label = box.name if len(box.name) <= chars else box.name[: chars - 2] + ".."
        parts.append(
            f'<text x="{x + 3:.2f}" y="{y + _FRAME_HEIGHT - 4.5:.1f}">{escape(label)}</text>'
        )
    parts.append("</g>")
    child_x = x
    inner = open_names | {box.name}
    for child in sorted(box.children.values(), key=lambda c: c.name):
        _draw(child, level + 1, child_x, bottom, scale, total, unit, palette, parts, inner)
        child_x += child.weight * scale
