"""Shared test settings.

Hypothesis runs derandomized (a fixed seed per test) unless HYPOTHESIS_PROFILE=explore,
so CI is reproducible and exploration is one variable away.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("explore", deadline=None, max_examples=500)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
