"""RLlib callbacks that log the scoreboard of every training episode.

Metric names are namespaced so TensorBoard groups them: ``slo/violation_rate``,
``cost/cpu_core_hours``, ``cost/mem_gib_hours``, ``util/cpu``, ``guard/clamps``,
``scaling/actions``. Each is a mean over the last ``EPISODE_WINDOW`` episodes: RLlib's default
for ``log_value`` is an exponential average with a coefficient of 0.01, so with a few episodes
per iteration the first, untrained episodes would dominate the figure for the whole run.
"""

from __future__ import annotations

from typing import Any

from policies.bootstrap.connector import scoreboard_records
from policies.bootstrap.driver import EpisodeReports

SLO_VIOLATION_RATE = "slo/violation_rate"
CPU_CORE_HOURS = "cost/cpu_core_hours"
MEM_GIB_HOURS = "cost/mem_gib_hours"
CPU_UTIL = "util/cpu"
GUARD_CLAMPS = "guard/clamps"
SCALING_ACTIONS = "scaling/actions"
EPISODE_WINDOW = 20
"""Episodes each training metric averages over (a few iterations' worth)."""


class ScoreboardCallbacks(EpisodeReports):
    """Totals each finished episode's scoreboard into the env runner's metrics.

    Env runners hand episodes over in chunks; the totals cover every chunk (the first info
    of a chunk repeats the last of the one before, so it is skipped).
    """

    def on_episode_end(self, *, episode: Any, metrics_logger: Any = None, **kwargs: Any) -> None:
        super().on_episode_end(episode=episode, metrics_logger=metrics_logger, **kwargs)
        if metrics_logger is None:
            return
        records = scoreboard_records([*(kwargs.get("prev_episode_chunks") or []), episode])
        if not records:
            return
        n = len(records)
        values = {
            SLO_VIOLATION_RATE: sum(bool(r["violated"]) for r in records) / n,
            CPU_CORE_HOURS: sum(r["cpu_core_hours"] for r in records),
            MEM_GIB_HOURS: sum(r["mem_gib_hours"] for r in records),
            CPU_UTIL: sum(r["cpu_utilization"] for r in records) / n,
            GUARD_CLAMPS: sum(r["guard_clamps"] for r in records),
            SCALING_ACTIONS: sum(r["scaling_actions"] for r in records),
        }
        for key, value in values.items():
            metrics_logger.log_value(key, value, window=EPISODE_WINDOW)
