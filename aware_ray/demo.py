"""``make demo``: train DDPG on the built-in simulator, then score it against the baselines.

1. ``aware-ray train`` with ``experiments/configs/demo.yaml`` (a few minutes on 2 cores, local
   Ray, through Tune: checkpoints, TensorBoard logs in ``OUT/train/tune``);
2. ``aware-ray evaluate`` of the trained policy beside the tuned-HPA frontier, VPA, HPA+VPA,
   static provisioning and the clairvoyant oracle, on a held-out real trace and a synthetic
   flash crowd, writing the scoreboard, plots and ``report.md`` into ``OUT``.

A few minutes of training does not make a policy that beats a tuned HPA; the demo shows the
whole loop. ``ddpg:pretrained`` is the shipped policy trained with ``default.yaml``.
"""

from __future__ import annotations

import time
from pathlib import Path

from aware_ray.evaluation.evaluate import EvalPlan, run, table

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "experiments" / "configs" / "demo.yaml"


def run_demo(out: Path, quick: bool = False, train: bool = True) -> int:
    from aware_ray.training.config import load_train_config
    from aware_ray.training.train import train as train_run

    t0 = time.time()
    out = Path(out)
    policies = ["hpa-frontier", "vpa", "hpa+vpa", "oracle", "static"]
    if train:
        overrides = ["run.iterations=2", "run.steps_per_iteration=300", "run.eval_every=2"] if quick else []
        cfg = load_train_config(DEMO_CONFIG, overrides)
        done = out / "train" / "train_summary.json"
        if done.exists():
            print(f"aware-ray demo: reusing the trained policy in {out / 'train'}", flush=True)
        else:
            print(f"aware-ray demo: training DDPG ({DEMO_CONFIG.name}) -> {out / 'train'}", flush=True)
            summary = train_run(cfg, out / "train", resume=(out / "train" / "train_state.json").exists())
            print(f"aware-ray demo: trained {summary['env_steps']:,.0f} env steps in {summary['wall_s']:.0f}s")
        policies.insert(0, f"ddpg:{out / 'train' / 'policy'}")
    plan = EvalPlan(
        policies=policies,
        app="social-network",
        traces=["wc98_1998-07_post-tournament_1min.csv"],
        families=["flash-crowd"],
        max_hours=1.0 if quick else 4.0,
        seeds=1 if quick else 2,
    )
    print(f"aware-ray demo: evaluating {len(plan.policies)} policies on {plan.app} -> {out}", flush=True)
    summary = run(plan, out)
    print(table(summary))
    print(
        f"\nreport: {out}/report.md  plots: {', '.join(summary['plots'])}  "
        f"TensorBoard: tensorboard --logdir {out / 'train' / 'tune'}  ({time.time() - t0:.0f} s)"
    )
    return 0
