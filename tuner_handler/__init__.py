"""tuner's handler-side library: hand a long job over to a fresh invocation, or split a payload.

It imports the Python standard library only (on AWS Lambda, the runtime's own boto3 too,
and only when it hands over or splits there), so it can be copied into a deployment
package as it is.  A handler adopts one remedy with a decorator:

- :func:`handover` (a worm function): the handler works in steps, keeps its progress in
  ``context.state`` and calls ``context.checkpoint()`` (or loops with ``context.each``);
  when the time left falls below the margin, the invocation ends cleanly and a fresh
  invocation of the same function carries on from the state.
- :func:`split` (map-reduce): the event splits into parts (a list field, or a function
  of the handler's), each part runs as its own invocation, in parallel, and the parts'
  results are merged.

Both are switched and sized by settings tuner controls (the function's environment on
Lambda, the host's configuration on tuner's local host): without them the handler runs
as it always did.  See docs/remedies.md.
"""

from tuner_handler.chains import HandoverRefused, Link, handover
from tuner_handler.parts import SplitFailed, merge_results, split

__all__ = [
    "HandoverRefused",
    "Link",
    "SplitFailed",
    "handover",
    "merge_results",
    "split",
]
