"""What a Lambda log line that is not a report says went wrong, in each runtime's own words.

Lambda itself writes ``Task timed out after N seconds``, ``Runtime exited with error:
signal: killed`` and ``Runtime.OutOfMemory``; the runtimes write their own words when they
run out of memory or cannot load the function:

============  ===========================================  ==========================================
runtime       out of memory                                init (load) failure
============  ===========================================  ==========================================
Python        ``[ERROR] MemoryError``                      ``Runtime.ImportModuleError``,
                                                           ``Unable to import module``,
                                                           ``Syntax error in module``
Node.js       ``Reached heap limit``, ``Allocation         ``Runtime.HandlerNotFound``, ``... is
              failed - JavaScript heap out of memory``     undefined or not exported``,
                                                           ``Cannot find module``
Java          ``OutOfMemoryError`` (heap space,            ``Class not found:``,
              Metaspace, GC overhead, array size...)       ``ClassNotFoundException``
.NET          ``OutOfMemoryException``
Ruby          ``NoMemoryError``
Go            ``runtime: out of memory``, ``fatal error:   ``Runtime.InvalidEntrypoint``
              out of memory``
Rust          ``memory allocation of N bytes failed``
============  ===========================================  ==========================================

Every signature is matched as whole words, so ``MemoryErrors`` or ``allocation failure``
(a V8 garbage collection notice) are not signatures.  A signature may stand anywhere in
the line: log shippers and the runtimes' JSON format put their own text around it.
"""

from __future__ import annotations

import re
from enum import Enum


class LineKind(Enum):
    """What a line that is not a report says about its invocation or init phase."""

    OOM = "oom"
    TIMEOUT = "timeout"
    INIT_FAILURE = "init_failure"


INIT_ERROR_TYPES = frozenset(
    {
        "Runtime.ImportModuleError",
        "Runtime.UserCodeSyntaxError",
        "Runtime.HandlerNotFound",
        "Runtime.InvalidEntrypoint",
        "Runtime.MalformedHandlerName",
    }
)
"""Error types of a report or an invocation error that mean the function could not load."""

_OOM = (
    r"Runtime\.OutOfMemory",
    r"Runtime exited with error: signal: killed",
    # Python's, as an uncaught exception (never "handled a MemoryError" in a message)
    r"(?:^\s*|\[ERROR\]\s+|\"errorType\":\s*\")MemoryError\b",
    r"Reached heap limit",
    r"Allocation failed - (?:JavaScript heap|process) out of memory",
    r"JavaScript heap out of memory",
    r"\bOutOfMemoryError\b",
    r"\bOutOfMemoryException\b",
    r"\bNoMemoryError\b",
    r"\bruntime: out of memory\b",
    r"\bfatal error: (?:runtime: )?(?:out of memory|cannot allocate memory)\b",
    r"\bmemory allocation of \d+ bytes failed",
)
_TIMEOUT = (r"\bTask timed out after\b",)
_INIT_FAILURE = (
    *(re.escape(kind) + r"\b" for kind in sorted(INIT_ERROR_TYPES)),
    r"\bUnable to import module\b",
    r"\bSyntax error in module\b",
    r"\bis undefined or not exported\b",
    r"\bCannot find module\b",
    r"\bClass not found: ",
    r"\bClassNotFoundException\b",
)
_SIGNATURES = (
    (LineKind.OOM, re.compile("|".join(_OOM))),
    (LineKind.TIMEOUT, re.compile("|".join(_TIMEOUT))),
    (LineKind.INIT_FAILURE, re.compile("|".join(_INIT_FAILURE))),
)

FILTER_TERMS = (
    "REPORT",
    "INIT_REPORT",
    "platform.report",
    "platform.initReport",
    "Task timed out",
    "Runtime exited with error",
    "Runtime.OutOfMemory",
    "MemoryError",
    "Reached heap limit",
    "JavaScript heap out of memory",
    "OutOfMemoryError",
    "OutOfMemoryException",
    "NoMemoryError",
    "out of memory",
    "cannot allocate memory",
    "memory allocation of",
    *sorted(INIT_ERROR_TYPES),
    "Unable to import module",
    "Syntax error in module",
    "is undefined or not exported",
    "Cannot find module",
    "Class not found",
    "ClassNotFoundException",
)
"""One term of a CloudWatch filter pattern for each signature above (see ``FILTER_PATTERN``)."""


def classify(line: str) -> LineKind | None:
    """The failure a line that is not a report names, or None when it names none."""
    for kind, pattern in _SIGNATURES:
        if pattern.search(line):
            return kind
    return None
