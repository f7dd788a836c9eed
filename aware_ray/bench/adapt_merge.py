"""``aware-ray bench adapt --merge A,B,... --out C``: one result from runs of one protocol split by
seed or by workload.

The real protocol (``experiments/configs/adapt.yaml``) takes about 15 hours on 2 cores, so it is
run in parts: seeds in separate launches, workloads on separate machines. Each part repeats what
it needs of the protocol (the specialist of its workloads, trained with ``adapt.specialist_seed``,
is deterministic), so parts can be joined afterwards and summarised as if run at once: the same
per-workload summary (``adapt.summarize_workload``), goals and table.

Parts join only where they are the same protocol: the same config, budgets, threshold, scoring,
pre-trained checkpoints (the paths each part used, whether it trained them or was given them) and
every ``--set`` other than ``adapt.seeds``, ``adapt.workloads`` and those two paths. A workload in
two parts must have the same specialist curve, and no (workload, arm, seed) may come twice. Anything
else is a one-line error before anything is written.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from envs.errors import ConfigError

SPLIT_KEYS = ("adapt.seeds=", "adapt.workloads=", "adapt.pretrained_meta=", "adapt.pretrained_flat=")
"""``--set`` overrides parts may differ in: how the protocol was split, and whether a pre-trained
checkpoint was named or trained (the paths the parts used are compared instead)."""

SAME = ("config", "app", "threshold", "eval_seeds", "eval_hours", "budgets")
"""Result fields every part must share."""


def load_part(folder: str | Path) -> dict[str, Any]:
    """A finished ``bench adapt`` output folder's ``adapt_bench.json`` (with its runs)."""
    path = Path(folder) / "adapt_bench.json"
    if not path.is_file():
        raise ConfigError(f"--merge: {folder}: no adapt_bench.json (not a finished bench adapt output folder)")
    try:
        part = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ConfigError(f"--merge: {path}: not readable JSON ({exc})") from None
    runs = part.get("runs") if isinstance(part, dict) else None
    if (
        not isinstance(part, dict)
        or part.get("bench") != "adapt"
        or not isinstance(runs, dict)
        or not all(isinstance(runs.get(k), dict) for k in ("specialist", "arms"))
    ):
        raise ConfigError(f"--merge: {path}: not a bench adapt result with its runs")
    return part


def protocol_of(part: dict[str, Any]) -> dict[str, Any]:
    """What must agree between parts: the shared fields, the pre-trained checkpoints and the other overrides."""
    pretrained = part.get("pretrained") or {}
    return {
        **{k: part.get(k) for k in SAME},
        "pretrained": {k: pretrained.get(k) for k in ("meta", "flat")},
        "overrides": sorted(o for o in part.get("overrides", []) if not o.startswith(SPLIT_KEYS)),
    }


def merge_runs(parts: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
    """The union of the parts' runs (specialists, arms by seed, baseline timings, shipped zero-shot scores)."""
    first_name, first = parts[0]
    reference = protocol_of(first)
    runs: dict[str, Any] = {"pretrain": {}, "specialist": {}, "arms": {}, "baseline_s": {}}
    shipped: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for name, part in parts:
        proto = protocol_of(part)
        for key, value in proto.items():
            if value != reference[key]:
                raise ConfigError(
                    f"--merge: {name} and {first_name} are not the same protocol: {key} {value!r} vs {reference[key]!r}"
                )
        for kind, info in part["runs"].get("pretrain", {}).items():
            runs["pretrain"].setdefault(kind, info)
        for workload, spec in part["runs"]["specialist"].items():
            if workload in runs["specialist"]:
                mine = [p["score"] for p in spec["curve"]]
                theirs = [p["score"] for p in runs["specialist"][workload]["curve"]]
                if mine != theirs:
                    raise ConfigError(
                        f"--merge: {name} and {origin[workload]}: the specialist of {workload} differs "
                        f"({mine} vs {theirs}), so their thresholds would too"
                    )
            else:
                runs["specialist"][workload], origin[workload] = spec, name
                runs["baseline_s"][workload] = part["runs"].get("baseline_s", {}).get(workload)
        for workload, arms in part["runs"]["arms"].items():
            into = runs["arms"].setdefault(workload, {})
            for arm, by_seed in arms.items():
                for seed, run in by_seed.items():
                    if str(seed) in into.setdefault(arm, {}):
                        raise ConfigError(f"--merge: {name}: {workload} {arm} seed {seed} is in an earlier part too")
                    into[arm][str(seed)] = run
        for workload, z in (part.get("shipped_zero_shot") or {}).items():
            shipped.setdefault(workload, z)
    for workload in runs["arms"]:
        if workload not in runs["specialist"]:
            raise ConfigError(f"--merge: {workload}: arms without a specialist in any part")
    return {"runs": runs, "shipped": shipped, "protocol": reference}


def merge_adapt(folders: list[str], out: str | None) -> dict[str, Any]:
    """Join the parts in ``folders`` into ``out`` (``adapt_bench.json``, ``adapt_bench.md``); the one-line result."""
    from aware_ray.bench.adapt import overall, shipped_fractions, summarize_workload, trained_here, write_result

    if len(folders) < 2:
        raise ConfigError("--merge: name at least two bench adapt output folders, comma-separated")
    if not out:
        raise ConfigError("--merge: --out is required (where the merged result goes)")
    if any(Path(f).resolve() == Path(out).resolve() for f in folders):
        raise ConfigError(f"--merge: --out {out} is one of the parts; write the merged result elsewhere")
    parts = [(f, load_part(f)) for f in folders]
    merged = merge_runs(parts)
    runs, proto = merged["runs"], merged["protocol"]
    adapt = {"threshold": proto["threshold"], "finetune_steps": proto["budgets"]["finetune_steps"]}
    # Arms keyed by int seed, in order, as a single run holds them.
    per_workload = {}
    for workload, arms in runs["arms"].items():
        ordered = {arm: {int(s): by_seed[s] for s in sorted(by_seed, key=int)} for arm, by_seed in arms.items()}
        per_workload[workload] = summarize_workload(runs["specialist"][workload], ordered, adapt)
    seeds = sorted({int(s) for arms in runs["arms"].values() for by_seed in arms.values() for s in by_seed})
    result = {
        "bench": "adapt",
        "config": proto["config"],
        "overrides": proto["overrides"],
        "merged_from": [str(f) for f in folders],
        "app": proto["app"],
        "workloads": per_workload,
        "goals": overall(per_workload),
        "threshold": proto["threshold"],
        "seeds": seeds,
        "eval_seeds": proto["eval_seeds"],
        "eval_hours": proto["eval_hours"],
        "budgets": proto["budgets"],
        "pretrained": {**proto["pretrained"], "trained_here": trained_here(runs["pretrain"])},
        "shipped_zero_shot": shipped_fractions(merged["shipped"], per_workload),
        "wall_s": round(sum(float(p.get("wall_s") or 0.0) for _, p in parts), 1),
    }
    return write_result(Path(out), result, runs)
