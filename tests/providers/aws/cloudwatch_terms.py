"""CloudWatch Logs filter patterns over unstructured events, with the terms semantics AWS documents.

From "Filter pattern syntax for metric filters, subscription filters, and filter log
events" (Amazon CloudWatch Logs User Guide, ``FilterAndPatternSyntax.md``):

- a pattern is a list of terms; an event matches when it contains every term;
- a term is a word, or an exact phrase in double quotation marks, which terms with
  non-alphanumeric characters need;
- ``?TERM`` terms: the event matches when it contains any of them;
- ``-TERM`` excludes events that contain the term;
- patterns are case sensitive.

"Contains a term" means a whole term, not a substring: ``ERROR`` matches ``[ERROR 400]
BAD REQUEST`` but not ``ERRORS``.  Here a term's ends must sit at the message's ends or
next to a character that is not a letter or a digit.  moto's log server matches plain
substrings and does not implement ``?`` at all, so the pattern tuner sends is checked
here instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DOCUMENT = (
    "https://github.com/awsdocs/amazon-cloudwatch-logs-user-guide/blob/"
    "26c12c3d66ecf7465037ca77e8a0ef963b069d1e/doc_source/FilterAndPatternSyntax.md"
)
_TOKEN = re.compile(r'([?-]?)(?:"([^"]*)"|(\S+))')


@dataclass(frozen=True)
class Term:
    """One term of a pattern: its text and its operator (``?``, ``-`` or none)."""

    text: str
    operator: str

    def found_in(self, message: str) -> bool:
        """True when the message contains the term as whole terms."""
        pattern = rf"(?<![A-Za-z0-9]){re.escape(self.text)}(?![A-Za-z0-9])"
        return re.search(pattern, message) is not None


def parse(pattern: str) -> list[Term]:
    """The terms of a pattern; unquoted terms must be alphanumeric, as AWS requires."""
    terms = []
    for operator, quoted, bare in _TOKEN.findall(pattern):
        if bare and not bare.isalnum():
            raise ValueError(f"unquoted term with non-alphanumeric characters: {bare!r}")
        terms.append(Term(quoted if quoted else bare, operator))
    return terms


def matches(pattern: str, message: str) -> bool:
    """True when CloudWatch would return the event for the pattern."""
    terms = parse(pattern)
    if any(t.operator == "-" and t.found_in(message) for t in terms):
        return False
    required = [t for t in terms if t.operator == ""]
    optional = [t for t in terms if t.operator == "?"]
    if not all(t.found_in(message) for t in required):
        return False
    return not optional or any(t.found_in(message) for t in optional)
