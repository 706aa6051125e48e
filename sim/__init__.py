"""The simulated omnichannel retailer: the embedded data source of the demo and the ground truth of tests.

``simulate_period(settings, cycle, plan=None)`` lands one cycle's batch under ``settings.landing_dir``
and records what really happened under ``settings.truth_dir`` (see docs/simulator.md).
"""

from sim.period import PeriodSummary, simulate_period

__all__ = ["PeriodSummary", "simulate_period"]
