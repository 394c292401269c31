"""The daemon's web side: health, readiness, Prometheus metrics, the JSON API and the dashboard.

:func:`attach` hooks a wired tuner to a :class:`tuner.daemon.live.LiveState` and a
:class:`tuner.web.metrics.Metrics`, and starts the HTTP server.  Everything it serves is
read-only unless a token is configured (``TUNER_WEB_TOKEN`` or ``TUNER_WEB_TOKEN_FILE``).
"""
