"""The shield between the learned policy and the app, online and serving.

The heuristic keeps every service near its CPU target by reacting to the usage it sees, with
a tolerance below which it changes nothing; a policy cloned from it and then trained online
has neither. It has seen few of the intervals where the reaction matters (a rising load is
rare in the data), and its actions are relative (``envs/action.py``), so a small bias in a
limit component, harmless on one interval, compounds on every interval after it: a CPU
component 0.02 too high doubles the limit in 50 intervals. The shield gives the policy both,
with less headroom than the heuristic keeps:

- ``limit_tolerance``: limit changes smaller than the tolerance are not made (the HPA's own
  tolerance is 10 %; 0.1 in action units is 7 % with the default step factor 2);
- ``utilization_floor``: no service is planned above ``ceiling`` CPU utilisation at the usage
  just observed: replicas are lifted to ``ceil(used / (ceiling x limit))``, as the HPA would, so
  the policy may save up to ``1 - target / ceiling`` of what the heuristic reserves for the
  same usage but cannot starve a service the way a half-trained policy would; and no CPU limit
  goes below the Deployment's own: a pod's latency grows as its limit shrinks (a request takes
  ``CPU ms / limit``), which no utilisation bound catches, and the heuristic it falls back to
  keeps that limit too (teacher.py). The policy may still give pods more CPU.
- ``memory_floor`` (with the utilisation floor): no memory limit below the heuristic's own
  decision for the same interval (the VPA's recommendation). Memory use grows with the requests
  a pod holds, so a limit cut to the usage of a quiet moment OOM-kills pods as soon as a queue
  builds, and each kill sheds its queue onto the others: a cascade the heuristic, taking over,
  cannot always stop. Memory is not what the cost is counted in (CPU core-hours) either.

On an episode's first interval no usage has been observed, so the arbiter lets the heuristic
decide it whenever the floor is on. Pure functions: the observation and the actions in, the
shielded action out (what the env then decodes, and what the replay buffer records as applied).
"""

from __future__ import annotations

import numpy as np

from envs.action import ACTION_DIMS, decode, encode
from envs.metrics import ScalingDecision
from envs.observation import service_view
from policies.base import EnvContext


def limit_tolerance(action: np.ndarray, n_services: int, tolerance: float) -> np.ndarray:
    """``action`` with the CPU and memory components of real services below ``tolerance`` set to 0."""
    out = np.array(action, dtype=np.float32).reshape(-1, ACTION_DIMS)
    limits = out[:n_services, 1:]
    limits[np.abs(limits) < tolerance] = 0.0
    return out.ravel()


def memory_floor(action: np.ndarray, heuristic_action: np.ndarray, n_services: int) -> np.ndarray:
    """``action`` with each real service's memory component at least the heuristic's.

    Both actions are relative to the same current limits, and the decoding is monotone in the
    component, so the larger component is the larger limit.
    """
    out = np.array(action, dtype=np.float32).reshape(-1, ACTION_DIMS)
    h = np.asarray(heuristic_action, dtype=np.float32).reshape(-1, ACTION_DIMS)
    out[:n_services, 2] = np.maximum(out[:n_services, 2], h[:n_services, 2])
    return out.ravel()


def utilization_floor(action: np.ndarray, observation: np.ndarray, ctx: EnvContext, ceiling: float) -> np.ndarray:
    """``action`` with CPU limits at least the Deployment's and replicas enough for ``ceiling``.

    The CPU in use (utilisation x ready replicas x limit) over the CPU the decision reserves
    (replicas x its new limit) must stay at most ``ceiling``; where it would not, the replica
    component asks for ``ceil(used / (ceiling x limit))`` (the guard's per-interval step and
    bounds still apply). Components the floor does not lift and padding rows are returned bit
    for bit.
    """
    app = ctx.app
    n = app.n_services
    out = np.array(action, dtype=np.float32).reshape(ctx.layout.max_services, ACTION_DIMS)
    view = service_view(observation, app, ctx.layout)
    current = ScalingDecision(view.replicas.astype(np.int64), view.cpu_limit, view.mem_limit)
    asked = decode(out[:n], current, ctx.guard)
    cpu = np.maximum(asked.cpu_limit, app.column("cpu_limit_initial"))
    used = view.cpu_utilization * view.ready_replicas * view.cpu_limit
    need = np.minimum(np.ceil(used / (ceiling * cpu) - 1e-9), app.column("max_replicas"))
    low_cpu = asked.cpu_limit < cpu
    low_replicas = asked.replicas < need
    if not (low_cpu.any() or low_replicas.any()):
        return out.ravel()
    lifted = ScalingDecision(np.maximum(asked.replicas, need).astype(np.int64), cpu, asked.mem_limit)
    encoded = encode(lifted, current, ctx.guard)
    out[:n, 0] = np.where(low_replicas, encoded[:, 0], out[:n, 0])
    out[:n, 1] = np.where(low_cpu, encoded[:, 1], out[:n, 1])
    return out.ravel()
