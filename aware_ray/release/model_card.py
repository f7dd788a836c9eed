"""Write a model card for an exported policy from its training run and quality benchmark.

``python -m aware_ray.release.model_card RUN_DIR QUALITY_JSON OUT_DIR`` copies the run's best policy
into OUT_DIR with ``MODEL_CARD.md`` (config, training workloads, env steps, wall time,
validation scores and the held-out scoreboard), the training config and the benchmark itself
(``quality.json``).
``python -m aware_ray.release.model_card --refresh CARD_DIR QUALITY_JSON [NOTE...]`` rewrites only the
scoreboard and goal count of an existing card from a new benchmark of the same policy.
"""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import yaml

from aware_ray.evaluation.scoreboard import GOAL_MEMORY_RATIO, goal_met
from envs.atomic_write import write_files
from envs.config import EnvConfig


def _score_name(val: dict[str, Any]) -> str:
    """What the selection score was: runs validated before the risk charge kept the plain gap closed,
    and runs validated before money was scored compared CPU against the HPA alone (their figures are
    labelled by ``_label_cpu_figures`` when the card is refreshed in money)."""
    if "risk_gap" not in val:
        return "validation gap closed"
    if "money" in val:
        compression = f", traces at time compression {val['time_compression']:g}" if "time_compression" in val else ""
        return f"validation score (gap closed in money, charged for risk past the heuristic frontier{compression})"
    return "validation score (gap closed, charged for risk past the HPA frontier)"


def _held_out_among(picked: list[str], seed_start: int) -> list[str]:
    """The selection workloads that are held-out load: a trace of the held-out split (a variant of it,
    ``+...``, too) or a held-out family drawn at the held-out table's seeds. The card must say when
    the choice saw the test, and must not claim it did when validation used other load."""
    from aware_ray.bench.runner import HELD_OUT_FAMILIES, HELD_OUT_SEEDS
    from envs.workload import default_split

    traces = {t.removeprefix("trace:") for t in default_split()["held_out"]}
    return [
        w
        for w in picked
        if w.removeprefix("trace:").split("+")[0] in traces or (w in HELD_OUT_FAMILIES and seed_start < HELD_OUT_SEEDS)
    ]


def _selection_bullet(run: dict[str, Any], note: str) -> list[str]:
    """Which load chose the policy: training's validation workloads, and how many were held out."""
    picked = [*run.get("eval_traces", []), *run.get("eval_families", [])]
    held = _held_out_among(picked, int(run.get("eval_seed_start", 0)))
    where = f"{run.get('eval_seeds', 1)} seed(s), {run.get('eval_hours', '?')} h windows"
    if held:
        text = (
            f"- Model selection used {len(held)} of the held-out workloads ({', '.join(held)}; {where}); the "
            "others were seen neither in training nor in selection"
        )
    else:
        text = (
            f"- Model selection used none of the held-out workloads: training's validation scored "
            f"{', '.join(picked) or 'no workload'} ({where}), load apart from the held-out list"
        )
    return textwrap.wrap(text + (f". {note}" if note else "."), 100, subsequent_indent="  ")


def _env(env: dict[str, Any], key: str) -> Any:
    """An env setting of the run: its config holds only the keys it set, the rest are EnvConfig's defaults."""
    return env.get(key, EnvConfig.__dataclass_fields__[key].default)


def _fmt(x: Any, spec: str = ".2f") -> str:
    return "–" if x is None else format(x, spec)


def _probe_split(folds: list[float] | None) -> str:
    """How the probe figure was fitted and scored, with the spread of its folds when given."""
    if not folds:  # a figure from before the probe scored every seed in turn
        return "fitted on two seeds per family and scored on a third"
    n = len(folds)
    return (
        f"fitted on {n - 1} seeds per family and scored on the remaining one, each of the {n} in turn; "
        f"folds from {min(folds):.2f} to {max(folds):.2f}"
    )


def _deployed_as(policy: str) -> str:
    """The benchmarked policy name with its folder read as the shipped one: rules in front stay."""
    from policies.registry import inner_name

    inner = inner_name(policy)
    return policy[: len(policy) - len(inner)] + "ddpg:pretrained"


def _table_head(per_seed: bool, memory: bool = False) -> list[str]:
    """The held-out table's header; benchmarks that scored each seed on its own get a column for it,
    and those that report memory one for the policy's memory beside the oracle's."""
    head = "| app | workload | violations | CPU core-h | gap closed | fewer violations than frontier at same cost |"
    rule = "|---|---|---:|---:|---:|---:|"
    if per_seed:
        head, rule = head + " goal met on seeds |", rule + "---:|"
    if memory:
        head, rule = head + " memory GiB-h (oracle) |", rule + "---:|"
    return [head, rule]


SCOREBOARD_HEADING = "## Held-out scoreboard (`aware-ray bench ddpg-quality`)"


def _in_money(quality: dict[str, Any]) -> bool:
    """Whether a benchmark scored money against the heuristic frontier (later ones do); earlier ones
    scored CPU core-hours against the HPA alone, with traces at the training env's 4x compression."""
    return "memory_price" in quality


def _compression(quality: dict[str, Any], env: dict[str, Any]) -> float:
    return float(quality.get("time_compression", _env(env, "time_compression")))


def _money_scoreboard(quality: dict[str, Any]) -> list[str]:
    price = quality["memory_price"]
    price_text = "1/9" if abs(price - 1 / 9) < 1e-9 else f"{price:g}"
    lines = [
        f"Seeds: {quality.get('seeds')}; {quality.get('max_hours')} simulated hours per episode; traces replayed at "
        f"time compression {_compression(quality, {}):g} (1: real time).",
        f"Money: CPU core-hours + memory GiB-hours × {price_text}. Gap closed: share of the distance in money from "
        "the heuristic frontier (the HPA, the HPA with an in-place VPA and the predictive HPA, each at targets "
        "0.2–0.9) to the oracle, at the policy's violation rate; beside it the same against the HPA alone. "
        "Memory: the policy's GiB-hours against the HPA with an in-place VPA at the violation rate nearest its "
        f"own (the goal allows {GOAL_MEMORY_RATIO:g}×).",
        "",
        "| app | workload | violations (cap) | money (oracle) | CPU core-h | memory GiB-h (in-place VPA) | gap closed "
        "| gap vs HPA | fewer violations at same money | goal met on seeds |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for app, rows in quality.get("results", {}).items():
        for trace, r in rows.items():
            red = r["violation_reduction"]
            cap = r.get("violation_cap")
            cap_text = _fmt(None if cap is None else 100 * cap, ".1f")
            red_text = "–" if red is None else f"{100 * red:.0f} %"
            seeds_text = f"{r.get('seeds_goal_met', '?')} of {quality.get('seeds')}"
            lines.append(
                f"| {app} | {trace} | {100 * r['slo_violation_rate']:.2f} % ({cap_text} %) "
                f"| {r['money']:.2f} ({_fmt(r.get('oracle_money'))}) | {r['cpu_core_hours']:.2f} "
                f"| {r['mem_gib_hours']:.1f} ({_fmt(r.get('memory_reference_gib_hours'), '.1f')}) "
                f"| {_fmt(r['gap_closed'])} | {_fmt(r.get('gap_closed_hpa'))} "
                f"| {red_text} | {seeds_text} |"
            )
    return lines


def _scoreboard(quality: dict[str, Any], env: dict[str, Any]) -> list[str]:
    """The held-out scoreboard section: the table and the embedding probe, all from `quality`."""
    per_seed = any("seeds_goal_met" in r for rows in quality.get("results", {}).values() for r in rows.values())
    memory = any("mem_gib_hours" in r for rows in quality.get("results", {}).values() for r in rows.values())
    deployed = _deployed_as(quality.get("policy") or "ddpg:pretrained")
    lines = [
        SCOREBOARD_HEADING,
        *([f"Benchmarked as `{deployed}` (the policy behind those rules)."] if deployed != "ddpg:pretrained" else []),
    ]
    if _in_money(quality):
        lines += _money_scoreboard(quality)
    else:
        lines += [
            f"Seeds: {quality.get('seeds')}; {quality.get('max_hours')} simulated hours per episode, traces at "
            f"{_compression(quality, env):g}× time compression. Gap closed: share",
            "of the distance from the tuned-HPA frontier to the oracle at the policy's violation rate, in CPU",
            "core-hours only.",
            "",
            *_table_head(per_seed, memory),
        ]
        for app, rows in quality.get("results", {}).items():
            for trace, r in rows.items():
                red = r["violation_reduction"]
                red_text = "–" if red is None else f"{100 * red:.0f} %"
                seeds_text = f" {r.get('seeds_goal_met', '?')} of {quality.get('seeds')} |" if per_seed else ""
                mem_text = (
                    f" {_fmt(r.get('mem_gib_hours'), '.1f')} ({_fmt(r.get('oracle_mem_gib_hours'), '.1f')}) |"
                    if memory
                    else ""
                )
                lines.append(
                    f"| {app} | {trace} | {100 * r['slo_violation_rate']:.2f} % | {r['cpu_core_hours']:.2f} | "
                    f"{_fmt(r['gap_closed'])} | {red_text} |{seeds_text}{mem_text}"
                )
    steps = quality.get("probe_episode_steps") or [env.get("episode_steps"), None]
    if quality.get("probe_accuracy_held_out") is None:
        return [*lines, ""]
    probe = (
        f"Embedding probe (a linear read-out of the embedding, {_probe_split(quality.get('probe_accuracy_folds'))}) "
        f"on the six synthetic families: {_fmt(quality.get('probe_accuracy_held_out'))} on episodes "
        f"of the trained length ({steps[0]} intervals); the same probe on the raw history window and context: "
        f"{_fmt(quality.get('probe_accuracy_raw_window'))}; chance 0.17."
    )
    if quality.get("probe_accuracy_short_episodes") is not None:
        probe += (
            f" On {steps[1]}-interval episodes (time-compressed instances of the families, not seen in "
            f"training): {_fmt(quality['probe_accuracy_short_episodes'])}."
        )
    return [*lines, "", *textwrap.wrap(probe, 100, break_on_hyphens=False), ""]


def _met(r: dict[str, Any]) -> bool:
    """The goal on one row of a benchmark: as it recorded it (money, memory included), else as scored now."""
    if "goal_met" in r:
        return bool(r["goal_met"]) and r.get("memory_met") is not False
    return goal_met(r)


def _goal(quality: dict[str, Any], env: dict[str, Any] | None = None) -> list[str]:
    """The Limits bullet that counts the goal per app, as the benchmark counts it."""
    results = quality.get("results", {})
    met = {app: (sum(_met(r) for r in rows.values()), len(rows)) for app, rows in results.items()}
    if _in_money(quality):
        what = (
            "- The goal (in money against the heuristic frontier: closing half the gap to the oracle, or 50 % "
            "fewer violating intervals at equal money, with violations at most max(2 %, the safest heuristic's); "
            f"and memory at most {GOAL_MEMORY_RATIO:g}× the HPA with an in-place VPA's; on every held-out "
            "workload, at real time) is met on "
        )
    else:
        what = (
            "- The goal as scored before money and real time (in CPU core-hours against the HPA alone, traces at "
            f"{_compression(quality, env or {}):g}× time compression: closing half the gap, or 50 % fewer violating "
            "intervals than the frontier at the same cost, on every held-out workload) is met on "
        )
    return textwrap.wrap(
        what
        + ", ".join(f"{k} of {n} on {app}" for app, (k, n) in met.items())
        + " (apps other than the training one: zero-shot).",
        100,
        subsequent_indent="  ",
    )


REBENCHED = "- Re-benchmarked: "
SELECTED = "- Selected: iteration"
LOWER_BOUND = '- "lower bound" gaps: '
LOWER_BOUND_CPU = [
    LOWER_BOUND + "where the policy is safer than every HPA target, it is compared with the",
    "  safest target's cost; where it is riskier than every target, it has no gap (see",
    "  aware_ray/evaluation/scoreboard.py).",
]
LOWER_BOUND_MONEY = [
    LOWER_BOUND + "where the policy is safer than every heuristic point, it is compared with",
    "  the safest point's money; where it is riskier than every point, it has no gap (see",
    "  aware_ray/evaluation/scoreboard.py).",
]


def write_card(run_dir: Path, quality: dict[str, Any], out: Path, selection: str = "") -> Path:
    summary = json.loads((run_dir / "train_summary.json").read_text())
    cfg = yaml.safe_load((run_dir / "config.yaml").read_text())
    out.mkdir(parents=True, exist_ok=True)
    # The policy, its config and its card are written together: never a card beside another policy.
    files: dict[str, str | bytes] = {f: (run_dir / "policy" / f).read_bytes() for f in ("policy.pt", "policy.json")}
    files["train_config.yaml"] = yaml.safe_dump(cfg, sort_keys=False)
    best = summary["best"]
    val = next((v for v in summary["validation"] if v["iteration"] == best["iteration"]), {})
    env, ddpg = cfg["env"], cfg.get("ddpg", {})
    meta = f"GRU meta-learner over the last {env.get('history_window')} intervals"
    if env.get("context_span"):
        meta += f" and a summary of the load over the last {env['context_span']}"
    if ddpg.get("workload_loss_weight"):
        meta += ", trained to tell the training workloads apart"
    what = (
        f"A DDPG policy (deterministic tanh actor with per-service shared weights, {meta}) that sets "
        "replicas, CPU and memory limits of every service of an app each 15 s interval, through the "
        "guard. Trained on the simulator only."
    )
    deployed = _deployed_as(quality["policy"]) if quality.get("policy") else "ddpg:pretrained"
    if deployed != "ddpg:pretrained":  # benchmarked behind rules: that is how it ships
        what += (
            f" Deployed as `{deployed}` (`policies/recommended.py`): the scoreboard below is that "
            "deployment's; the rules are in `envs/rules.py`."
        )
    lines = [
        "# Model card: aware-ray pretrained DDPG autoscaler",
        "",
        "## What it is",
        *textwrap.wrap(what, 100),
        "",
        "## Training",
        f"- Config: `train_config.yaml` (from `{summary['config']}`).",
        f"- App: `{cfg['env'].get('app')}`; max services {cfg['env'].get('max_services')}.",
        f"- Training workloads: {', '.join('`' + w + '`' for w in cfg['env'].get('workloads', []))}.",
        *(
            [
                f"- Load levels: {100 * env['level_prob']:.0f} % of training episodes scaled down, log-uniform "
                f"between {_env(env, 'level_min')} and 1 of their level."
            ]
            if env.get("level_prob")
            else []
        ),
        *(
            [f"- Idle stretches: {100 * env['idle_prob']:.0f} % of training episodes have stretches of no load."]
            if env.get("idle_prob")
            else []
        ),
        *(
            [
                f"- Load noise: {100 * env['jitter_prob']:.0f} % of training episodes have interval-to-interval "
                f"noise (log-normal, spread drawn in [0, {_env(env, 'jitter_sigma')}])."
            ]
            if env.get("jitter_prob")
            else []
        ),
        *(
            [
                "- Reward weights changed from the defaults (`envs/reward.py`): "
                + ", ".join(f"{k} {v}" for k, v in env["reward"].items())
                + "."
            ]
            if env.get("reward")
            else []
        ),
        *(
            [
                f"- Trained under the controller rules `{env['rules']}` (`envs/rules.py`); the policy acts "
                "behind them wherever it is loaded (`ddpg:PATH`), so evaluation and serving meet the env it "
                "learned in."
            ]
            if env.get("rules")
            else []
        ),
        f"- Iterations: {summary['iterations']}; env steps: {summary['env_steps']:,.0f}; wall time "
        f"{summary['wall_s'] / 60:.1f} min on 2 cores.",
        f"- Selected: iteration {best['iteration']} by {_score_name(val)} ({_fmt(best['score'])}); "
        f"validation violation rate {_fmt(100 * val.get('violation_rate', 0), '.2f')} %; "
        f"embedding probe accuracy {_fmt(val.get('probe_accuracy'))}.",
        *(
            ["- Selection redone after training by `aware-ray reselect` (every checkpoint scored again)."]
            if summary.get("reselected")
            else []
        ),
        "",
        *_scoreboard(quality, env),
    ]
    lines += [
        "## Limits",
        "- Judged on the simulator only; its latency model is validated against queueing theory and a",
        "  discrete-event simulation, not against a live cluster.",
        *_goal(quality, env),
        *_selection_bullet(cfg.get("run", {}), selection),
        *(LOWER_BOUND_MONEY if _in_money(quality) else LOWER_BOUND_CPU),
        f"- Trained for {summary['env_steps']:,.0f} env steps: far from converged; the validation score peaked "
        f"at iteration {best['iteration']} of {summary['iterations']}.",
        "",
    ]
    files["MODEL_CARD.md"] = "\n".join(lines)
    files["quality.json"] = json.dumps(quality, indent=1) + "\n"  # the benchmark the scoreboard shows, beside it
    write_files(out, files)
    return out / "MODEL_CARD.md"


def _label_cpu_figures(lines: list[str], env: dict[str, Any]) -> list[str]:
    """A card whose scoreboard is now in money keeps its training figures, which were measured in CPU
    core-hours against the HPA alone at the training compression: say so where they stand, and word
    the lower-bound bullet for the heuristic frontier."""
    label = (
        f" (validated in CPU core-hours against the HPA frontier, traces at {_env(env, 'time_compression'):g}× "
        "time compression)"
    )
    out = []
    skip = False
    for line in lines:
        if skip and line.startswith("  "):
            continue
        skip = False
        if line.startswith(SELECTED) and "time compression" not in line:
            line += label
        if line.startswith(LOWER_BOUND):
            out += LOWER_BOUND_MONEY
            skip = True
            continue
        out.append(line)
    return out


def refresh_card(card_dir: Path, quality: dict[str, Any], note: str = "") -> Path:
    """Rewrite the scoreboard and the goal count of the card in `card_dir` from a new benchmark of the
    same policy (after a change to the rules it is deployed behind, say), and store the benchmark as
    ``quality.json`` beside it. What the card says of training stays: it comes from the training
    run, which need not exist any more. `note` (why it was benchmarked again) replaces the previous
    refresh's note; without one, that note stays. Both files are written to temporary names before
    either is renamed, so a failed write leaves the old card and benchmark as they were.

    Raises:
        ValueError: if the card lacks the sections written by ``write_card``.
    """
    path = card_dir / "MODEL_CARD.md"
    lines = path.read_text().split("\n")
    env = yaml.safe_load((card_dir / "train_config.yaml").read_text()).get("env", {})
    try:
        top, limits = lines.index(SCOREBOARD_HEADING), lines.index("## Limits")
        goal = next(i for i in range(limits, len(lines)) if lines[i].startswith("- The goal "))
    except (ValueError, StopIteration):
        raise ValueError(f"{path}: not a model card written by write_card (no scoreboard or goal bullet)") from None
    end = next((i for i in range(goal + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
    old_note: list[str] = []
    if end < len(lines) and lines[end].startswith(REBENCHED):
        start, end = end, next((i for i in range(end + 1, len(lines)) if not lines[i].startswith("  ")), len(lines))
        old_note = lines[start:end]
    extra = textwrap.wrap(REBENCHED + note, 100, subsequent_indent="  ") if note else old_note
    new = [*lines[:top], *_scoreboard(quality, env), *lines[limits:goal], *_goal(quality, env), *extra, *lines[end:]]
    if _in_money(quality):
        new = _label_cpu_figures(new, env)
    files = {"quality.json": json.dumps(quality, indent=1) + "\n", "MODEL_CARD.md": "\n".join(new)}
    write_files(card_dir, files)
    return path


if __name__ == "__main__":
    if sys.argv[1:2] == ["--refresh"]:
        card, qual = (Path(a) for a in sys.argv[2:4])
        print(refresh_card(card, json.loads(qual.read_text()), " ".join(sys.argv[4:])))
    else:
        run, qual, dest = (Path(a) for a in sys.argv[1:4])
        print(write_card(run, json.loads(qual.read_text()), dest, " ".join(sys.argv[4:])))
