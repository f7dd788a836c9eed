"""``aware-ray tune``: a Tune sweep over training configs, judged on the validation score.

A sweep file names a base training config and a search space of dotted config keys. Each trial
is a whole ``aware-ray train`` run (the same trainable, so the same checkpoints, exported policy
and TensorBoard logs) in ``OUT/trials/TRIAL``. ASHA stops trials early on the score that
``train`` selects policies by (validation gap closed, charged for risk; never training reward),
read at each validation, so rungs should fall on multiples of ``run.eval_every``.

```yaml
base: default.yaml                  # training config, relative to this file
set: [run.iterations=8]             # optional overrides for every trial
space:                              # dotted key -> one distribution
  ddpg.actor_lr: {loguniform: [1.0e-4, 1.0e-3]}
  ddpg.tau: {choice: [0.002, 0.005, 0.01]}
  env.history_window: {choice: [16, 32]}
num_samples: 8                      # trials
max_concurrent: 2                   # trials at once; each takes 1 + run.num_env_runners CPUs
scheduler: {grace_period: 4, reduction_factor: 2}   # ASHA, in training iterations
```

Outputs in OUT: ``sweep.yaml`` (the sweep as run), ``validation_baselines.json`` (scored once:
the space may not change what the baselines face), ``trials/`` (one training run folder each),
``tune/`` (Tune's experiment, for ``--resume``, and TensorBoard logs of every trial),
``results.json`` and ``results.md`` (trials sorted by best validation score, with their
validation figures) and ``best_config.yaml`` (the base config with the best trial's values).
"""

from __future__ import annotations

import copy
import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import yaml

from aware_ray.training.config import SECTIONS, TrainConfig, build_train_config, check_selection_workloads
from aware_ray.training.dashboard import write_layout
from aware_ray.training.run_folder import load_or_score_baselines
from envs.atomic_write import write_json
from envs.errors import ConfigError

DISTRIBUTIONS = ("choice", "uniform", "loguniform", "randint")
"""How a key may vary: one of a list, a float range, a float range on a log scale, an int range."""
METRIC = "validation/score"
# Keys that change what the baselines face (the simulator, the app or the validation set) would
# make one baseline file wrong for some trials: a sweep may not vary them.
FIXED_PREFIXES = ("env.app", "env.noise", "env.max_services", "run.eval_", "run.seed", "run.iterations")


def _set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
        if not isinstance(node, dict):
            raise ConfigError(f"space: {key}: {part} is not a section")
    node[parts[-1]] = value


def with_values(raw: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """The raw training config with a trial's sampled values set (a copy)."""
    out = copy.deepcopy(raw)
    for key, value in values.items():
        _set_key(out, key, value)
    return out


def _samples(key: str, spec: Any) -> list[Any]:
    """Values that stand for a distribution when checking that every point of it is a valid config."""
    if not isinstance(spec, dict) or len(spec) != 1 or next(iter(spec)) not in DISTRIBUTIONS:
        raise ConfigError(f"space.{key}: expected one of {{{', '.join(DISTRIBUTIONS)}: ...}}, got {spec!r}")
    kind, arg = next(iter(spec.items()))
    if kind == "choice":
        if not isinstance(arg, list) or not arg:
            raise ConfigError(f"space.{key}.choice: expected a non-empty list, got {arg!r}")
        return list(arg)
    if not (isinstance(arg, list) and len(arg) == 2 and all(isinstance(a, int | float) for a in arg)):
        raise ConfigError(f"space.{key}.{kind}: expected [low, high], got {arg!r}")
    lo, hi = arg
    if not lo < hi or (kind == "loguniform" and lo <= 0):
        raise ConfigError(f"space.{key}.{kind}: need 0 < low < high for loguniform and low < high, got {arg!r}")
    if kind == "randint":
        return [int(lo), int(hi) - 1]
    return [float(lo), float(hi)]


def _tune_space(space: dict[str, Any]) -> dict[str, Any]:
    from ray import tune

    out = {}
    for key, spec in space.items():
        kind, arg = next(iter(spec.items()))
        out[key] = tune.choice(arg) if kind == "choice" else getattr(tune, kind)(*arg)
    return out


class Sweep:
    """A validated sweep file: the base config, the space and how trials are scheduled."""

    def __init__(self, path: str | Path, overrides: list[str] | None = None):
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: sweep file not found")
        try:
            doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not a valid YAML sweep file ({str(exc).splitlines()[0]})") from None
        if not isinstance(doc, dict):
            raise ConfigError(f"{path}: expected a mapping with base and space")
        known = {"base", "set", "space", "num_samples", "max_concurrent", "scheduler"}
        for key in doc:
            if key not in known:
                raise ConfigError(f"{path}: unknown key '{key}' (known: {', '.join(sorted(known))})")
        if "base" not in doc or not isinstance(doc["base"], str):
            raise ConfigError(f"{path}: base: the training config to start from is required")
        base = (path.parent / doc["base"]).resolve()
        if not base.is_file():
            raise ConfigError(f"{path}: base: {base.name} not found next to the sweep file")
        self.path = path
        self.base_path = base
        raw = yaml.safe_load(base.read_text(encoding="utf-8")) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{base}: expected a mapping with env, ddpg and run sections")
        sets = list(doc.get("set") or []) + list(overrides or [])
        self.base: TrainConfig = build_train_config(raw, str(base), sets)
        check_selection_workloads(self.base.run, str(base))
        space = doc.get("space")
        if not isinstance(space, dict) or not space:
            raise ConfigError(f"{path}: space: expected a mapping of dotted config keys to distributions")
        for key, spec in space.items():
            if key.split(".")[0] not in SECTIONS or "." not in key:
                raise ConfigError(f"space.{key}: the key must start with {', '.join(s + '.' for s in SECTIONS)}")
            if key.startswith(FIXED_PREFIXES):
                raise ConfigError(f"space.{key}: a sweep may not vary what the validation baselines face")
            for value in _samples(key, spec):
                # Every end of every range must make a valid training config, or a trial would
                # fail hours in; the error names the key as `train` would.
                build_train_config(with_values(self.base.raw, {key: value}), f"space.{key}={value!r}", [])
        self.space: dict[str, Any] = space
        self.num_samples = self._positive_int(doc, "num_samples", 4)
        self.max_concurrent = self._positive_int(doc, "max_concurrent", 1)
        sched = doc.get("scheduler") or {}
        if not isinstance(sched, dict) or set(sched) - {"grace_period", "reduction_factor"}:
            raise ConfigError(f"{path}: scheduler: expected {{grace_period, reduction_factor}}, got {sched!r}")
        self.grace_period = self._positive_int(sched, "grace_period", max(1, self.base.run.eval_every), "scheduler.")
        self.reduction_factor = self._positive_int(sched, "reduction_factor", 2, "scheduler.")
        if self.reduction_factor < 2:
            raise ConfigError(f"{path}: scheduler.reduction_factor must be >= 2, got {self.reduction_factor}")
        self.doc = doc

    def _positive_int(self, doc: dict[str, Any], key: str, default: int, prefix: str = "") -> int:
        value = doc.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ConfigError(f"{self.path}: {prefix}{key} must be an integer >= 1, got {value!r}")
        return value


def _trial(params: dict[str, Any]) -> None:
    """One sweep trial: a whole training run in its own folder, with the sampled values."""
    from ray import tune

    from aware_ray.training.train import _trainable

    values = {k: params[k] for k in params["keys"]}
    out = Path(params["out"]) / "trials" / tune.get_context().get_trial_id()
    out.mkdir(parents=True, exist_ok=True)
    raw = with_values(params["raw"], values)
    (out / "config.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    write_json(out / "values.json", values)
    # resume=True: a trial Tune restarts (a restored sweep, a lost worker) picks up its own
    # checkpoint when it has one, and starts fresh when it has none.
    trial = {"raw": raw, "source": params["source"], "out": str(out), "resume": True}
    _trainable({**trial, "baselines": params["baselines"]})


def results_table(out: Path) -> list[dict[str, Any]]:
    """Every trial that validated at least once, best validation score first."""
    rows = []
    for trial in sorted((out / "trials").glob("*")):
        hist_file, values_file = trial / "validation.json", trial / "values.json"
        if not hist_file.exists() or not values_file.exists():
            continue
        history = json.loads(hist_file.read_text())
        if not history:
            continue
        best = max(history, key=lambda v: v["score"])
        rows.append(
            {
                "trial": trial.name,
                "values": json.loads(values_file.read_text()),
                "score": best["score"],
                "iteration": best["iteration"],
                "iterations_run": max(v["iteration"] for v in history),
                "violation_rate": best["violation_rate"],
                "cpu_core_hours": best["cpu_core_hours"],
                "probe_accuracy": best.get("probe_accuracy"),
            }
        )
    return sorted(rows, key=lambda r: -r["score"] if math.isfinite(r["score"]) else math.inf)


def _markdown(rows: list[dict[str, Any]], keys: list[str]) -> str:
    head = ["trial", *keys, "score", "violations", "CPU core-h", "best at iter", "iters run"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        vals = [f"{r['values'][k]:.3g}" if isinstance(r["values"][k], float) else str(r["values"][k]) for k in keys]
        figures = [f"{r['score']:+.3f}", f"{100 * r['violation_rate']:.2f} %", f"{r['cpu_core_hours']:.2f}"]
        cells = [r["trial"], *vals, *figures, str(r["iteration"]), str(r["iterations_run"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def sweep(spec: Sweep, out: Path, resume: bool = False) -> list[dict[str, Any]]:
    """Run (or resume) the sweep; returns the results table also written to OUT."""
    import ray
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    from aware_ray.training.train import start_ray, trial_resources

    out = Path(out).resolve()
    if resume and not (out / "tune").is_dir():
        raise ConfigError(f"{out}: no sweep to resume there (no tune/ folder)")
    if not resume and (out / "tune").exists():
        raise ConfigError(f"{out}: a sweep is already there; pass --resume or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.yaml").write_text(yaml.safe_dump(spec.doc, sort_keys=False))
    baselines = load_or_score_baselines(out, spec.base, resume, who="aware-ray tune")
    run = spec.base.run
    # A trial reports the validation score only on its validation iterations; ASHA acts on those.
    os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
    started = start_ray(spec.max_concurrent * (1 + run.num_env_runners))
    write_layout(out / "tune")
    try:
        trainable = tune.with_resources(_trial, trial_resources(run))
        if resume:
            tuner = tune.Tuner.restore(str(out / "tune"), trainable, resume_errored=True)
        else:
            scheduler = ASHAScheduler(
                time_attr="iteration",
                max_t=run.iterations,
                grace_period=spec.grace_period,
                reduction_factor=spec.reduction_factor,
            )
            tuner = tune.Tuner(
                trainable,
                param_space={
                    **_tune_space(spec.space),
                    "keys": list(spec.space),
                    "raw": spec.base.raw,
                    "source": spec.base.source,
                    "out": str(out),
                    "baselines": baselines,
                },
                tune_config=tune.TuneConfig(
                    metric=METRIC,
                    mode="max",
                    scheduler=scheduler,
                    num_samples=spec.num_samples,
                    max_concurrent_trials=spec.max_concurrent,
                ),
                run_config=tune.RunConfig(name="tune", storage_path=str(out), verbose=0),
            )
        grid = tuner.fit()
        errors = [r.error for r in grid if r.error]
    finally:
        if started:
            ray.shutdown()
    rows = results_table(out)
    write_json(out / "results.json", rows)
    (out / "results.md").write_text(_markdown(rows, list(spec.space)))
    if rows:
        best = with_values(spec.base.raw, rows[0]["values"])
        (out / "best_config.yaml").write_text(yaml.safe_dump(best, sort_keys=False))
    if errors:
        first = str(errors[0]).splitlines()[0]
        print(f"aware-ray tune: {len(errors)} trial(s) failed; first: {first}", file=sys.stderr)
    return rows


def main_tune(config: str, overrides: list[str], out: str, resume: bool) -> int:
    spec = Sweep(config, overrides)
    rows = sweep(spec, Path(out), resume)
    if not rows:
        print("aware-ray tune: no trial reached a validation", file=sys.stderr)
        return 1
    print(
        f"aware-ray tune: {len(rows)} trials validated; best {rows[0]['trial']} score {rows[0]['score']:+.3f} "
        f"({rows[0]['values']}); table in {Path(out) / 'results.md'}"
    )
    return 0
