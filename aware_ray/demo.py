"""``make demo``: the baselines on the built-in simulator, with a report and plots.

It evaluates the tuned-HPA frontier, VPA, HPA+VPA, static provisioning and the clairvoyant
oracle on the social-network app, on a held-out real trace and a synthetic flash crowd, and
writes the scoreboard, plots and ``report.md`` into the output folder.
"""

from __future__ import annotations

import time
from pathlib import Path

from aware_ray.evaluate import EvalPlan, run, table


def run_demo(out: Path, quick: bool = False) -> int:
    t0 = time.time()
    plan = EvalPlan(
        policies=["hpa-frontier", "vpa", "hpa+vpa", "oracle", "static"],
        app="social-network",
        traces=["wc98_1998-07_post-tournament_1min.csv"],
        families=["flash-crowd"],
        max_hours=1.0 if quick else 4.0,
        seeds=1 if quick else 2,
    )
    print(f"aware-ray demo: evaluating {len(plan.policies)} policies on {plan.app} -> {out}")
    summary = run(plan, out)
    print(table(summary))
    print(f"\nreport: {out}/report.md  plots: {', '.join(summary['plots'])}  ({time.time() - t0:.0f} s)")
    return 0
