"""``make demo``: the shipped deployment against the baselines, and the training loop at work.

1. ``aware-ray train`` with ``experiments/configs/demo.yaml`` (a few minutes on 2 cores, local
   Ray, through Tune: checkpoints, TensorBoard logs in ``OUT/train/tune``), so the loop is seen
   working end to end;
2. ``aware-ray evaluate`` on a held-out real trace (the 1998 World Cup after the tournament) and a
   synthetic flash crowd, neither trained on: the recommended deployment
   (``policies.recommended.RECOMMENDED``), the shipped policy bare (``ddpg:pretrained``), the policy
   step 1 just trained, the tuned-HPA frontier, VPA, HPA+VPA, static provisioning and the
   clairvoyant oracle; writing the scoreboard, plots and ``report.md`` into ``OUT``.

The report opens with which row is which and whether each policy meets the quality goal per
workload. A few minutes of training does not make a policy that beats a tuned HPA; the shipped
one trained for 16 iterations, about 16 minutes on 2 cores (``policies/pretrained/MODEL_CARD.md``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from aware_ray.evaluation.evaluate import EvalPlan, run, table
from aware_ray.evaluation.scoreboard import goal_met
from envs.atomic_write import write_text
from policies.recommended import RECOMMENDED
from policies.registry import FRONTIER_TARGETS

DEMO_CONFIG = Path(__file__).resolve().parent.parent / "experiments" / "configs" / "demo.yaml"
SHIPPED = "ddpg:pretrained"
BASELINES = ["hpa-frontier", "vpa", "hpa+vpa", "oracle", "static"]
ROLES = {
    RECOMMENDED: "**the recommended deployment**: the shipped policy behind the `lean@0.3`, `mem@1.3`, "
    "`floor@0.8` and `stable@120` rules",
    SHIPPED: "the shipped policy alone (`policies/pretrained/`, 16 iterations of `default.yaml`)",
    "oracle": "baseline: clairvoyant oracle, knows the future load (the floor no controller reaches)",
    "static": "baseline: static provisioning for the episode's peak",
    "vpa": "baseline: the VPA alone (CPU and memory limits from recent use)",
    "hpa+vpa": "baseline: the HPA on CPU at 0.6 with the VPA on memory",
}


def role(policy: str, demo_policy: str | None) -> str:
    """What a row of the demo's scoreboard is, in words."""
    if policy == demo_policy:
        return "the policy this demo just trained for a few minutes (expected to lose: the loop at work)"
    if policy.startswith("hpa@"):
        return f"baseline: the Kubernetes HPA at target utilisation {policy[4:]} (the tuned-HPA frontier)"
    return ROLES.get(policy, policy)


def guide(summary: dict[str, Any], demo_policy: str | None) -> str:
    """The opening of the demo's report: which row is which, and the goal per workload."""
    workloads = summary["workloads"]
    met = {(s["policy"], s["trace"]): goal_met(s) for s in summary["scores"]}
    lines = [
        "# aware-ray demo",
        "",
        "Held-out workloads (never trained on): " + ", ".join(f"`{w}`" for w in workloads) + ".",
        "The quality goal on a workload: close at least half of the gap from the tuned-HPA frontier to the "
        "oracle, or have at least 50 % fewer violating intervals than the frontier at the same money, "
        "with violations at most max(2 %, the safest heuristic's) (see the scoreboard below and "
        "docs/scoreboard-money.md).",
        "",
        "| policy | what it is | goal met |",
        "|---|---|---|",
    ]
    for policy in summary["policies"]:
        if policy.startswith("hpa@") or policy == "oracle":
            goal = "–"
        else:
            goal = f"{sum(met.get((policy, w), False) for w in workloads)} of {len(workloads)}"
        lines.append(f"| `{policy}` | {role(policy, demo_policy)} | {goal} |")
    return "\n".join(lines) + "\n\n"


def run_demo(out: Path, quick: bool = False, train: bool = True) -> int:
    from aware_ray.training.config import load_train_config
    from aware_ray.training.train import train as train_run

    t0 = time.time()
    out = Path(out)
    policies = [RECOMMENDED, SHIPPED, *BASELINES]
    demo_policy = None
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
        demo_policy = f"ddpg:{out / 'train' / 'policy'}"
        policies.insert(2, demo_policy)
    plan = EvalPlan(
        policies=policies,
        app="social-network",
        traces=["wc98_1998-07_post-tournament_1min.csv"],
        families=["flash-crowd"],
        max_hours=1.0 if quick else 4.0,
        seeds=1 if quick else 2,
    )
    n = len(policies) - 1 + len(FRONTIER_TARGETS)  # hpa-frontier is one HPA per target
    print(f"aware-ray demo: evaluating {n} policies on {plan.app} -> {out}", flush=True)
    summary = run(plan, out)
    report = out / "report.md"
    write_text(report, guide(summary, demo_policy) + report.read_text().replace("# Evaluation:", "## Scoreboard:", 1))
    print(table(summary))
    print()
    print(guide(summary, demo_policy))
    tb = f"  TensorBoard: tensorboard --logdir {out / 'train' / 'tune'}" if train else ""
    print(f"report: {report}  plots: {', '.join(summary['plots'])}{tb}  ({time.time() - t0:.0f} s)")
    return 0
