"""The Kubernetes operator: Kopf handlers that run tuner for each TuningPolicy.

The operator holds no tuning logic.  It turns ``TuningPolicy`` custom resources into
tuner configurations, runs cycles through :class:`tuner.daemon.loop.Daemon`, and writes the
results back into the policies' status.
"""
