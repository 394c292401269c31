"""The ``sim`` provider: a simulated fleet of functions on a virtual clock.

It runs tuner's real loop, store and notifier against functions whose memory need,
duration, price and traffic are modelled (see :mod:`tuner.providers.sim.workloads`, and
:mod:`tuner.providers.sim.fleet` for how a fleet is drawn), and it knows each function's
true optimum, so what tuner does can be scored.
``build(Settings(functions=1000), clock=VirtualClock())`` gives a :class:`SimProvider`.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tuner.domain.ports import Clock
from tuner.providers.sim.fleet import make_fleet
from tuner.providers.sim.memory import Evidence
from tuner.providers.sim.provider import SIM_LIMITS, SimProvider, VirtualClock

__all__ = ["SIM_LIMITS", "Settings", "SimProvider", "VirtualClock", "build"]


class Settings(BaseModel):
    """Options of the simulated provider in ``tuner.yaml`` (``providers: [{type: sim}]``)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["sim"] = "sim"
    name: str = Field("sim", min_length=1, description="Provider name in function keys.")
    functions: int = Field(100, ge=1, le=1_000_000, description="Functions in the fleet.")
    seed: int = Field(0, description="The same seed gives the same fleet and the same traffic.")
    tracing: bool = Field(
        True, description="Report the traced peak and failed allocation size of OOM kills."
    )
    payload_sizes: bool = Field(
        True, description="Report payload sizes and how memory grows with them."
    )
    probe: bool = Field(
        True,
        description="Re-run one invocation killed for memory per window at the largest size "
        "and report its peak (extra.probe_peak_memory_mb).",
    )
    lookback_days: int = Field(14, ge=1, le=90, description="Days of peaks kept for lookbacks.")
    history_days: float = Field(
        14.0, ge=0, description="Days the fleet ran before the simulation starts (its history)."
    )
    trial_share: float = Field(
        0.1, gt=0, lt=1, description="Share of the traffic that runs at a size tried."
    )


def build(settings: Settings, *, clock: Clock) -> SimProvider:
    """A simulated provider for the settings; it needs nothing started or closed."""
    return SimProvider(
        make_fleet(settings.functions, settings.seed),
        clock,
        name=settings.name,
        seed=settings.seed,
        evidence=Evidence(
            tracing=settings.tracing, payloads=settings.payload_sizes, probe=settings.probe
        ),
        lookback_days=settings.lookback_days,
        history_days=settings.history_days,
        trial_share=settings.trial_share,
    )
