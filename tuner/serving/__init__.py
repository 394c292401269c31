"""HTTP serving that no client can starve: bounded connections, deadlines, bodies read last.

Every HTTP server of the daemon (the dashboard, the local host's invoke endpoint and its
dependency stubs) is a :class:`~tuner.serving.bounded.BoundedServer`: uvicorn's HTTP/1.1
server (h11 parses) with a cap on open connections, a deadline for each request to
arrive, and a handler that looks at the headers before a byte of the body is read.
"""
