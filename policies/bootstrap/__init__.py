"""Bootstrapping (AWARE's lifecycle): a heuristic keeps control until the learned policy is safe.

``Lifecycle`` is the per-app state machine (INITIALIZED -> OFFLINE -> ONLINE -> SERVING, and
back to ONLINE on drift); ``Arbiter`` decides, interval by interval, whether the heuristic or
the policy acts, with a ``SafetyMonitor`` that hands control back to the heuristic when the
policy does worse. Both are plain Python so training (inside RLlib's env runners) and the live
controller run the same logic.
"""

from policies.bootstrap.arbiter import Arbiter, Source
from policies.bootstrap.config import BootstrapConfig
from policies.bootstrap.lifecycle import Lifecycle, Transition
from policies.bootstrap.phase import Phase

__all__ = ["Arbiter", "BootstrapConfig", "Lifecycle", "Phase", "Source", "Transition"]
