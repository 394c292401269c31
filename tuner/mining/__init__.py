"""Mining who calls whom from timing alone: invocation intervals and request-rate series.

Pure: the miners only need numbers; providers and the trace package feed them."""
