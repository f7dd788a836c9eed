"""A validation set on its own: ``aware-ray validation-set --config C [--set K=V ...] --out DIR``.

``aware-ray rank`` scores candidates on a training run's validation: its workloads, seeds and
windows, and the baselines (every HPA target of the frontier and the oracle) it stored when it
started. Choosing what to ship sometimes needs a validation no run had: more seeds to tell two
near-tied candidates apart, another workload, a wider frontier. This writes such a folder
without training anything: the config (``config.yaml``) and the baselines scored exactly as
training scores them (``validation_baselines.json``), so ``rank DIR`` works on it as on a run and
its figures compare with those of runs of the same validation.

The folder appears whole or not at all: everything is written to a sibling temporary folder
first, then renamed into place.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from aware_ray.training.config import TrainConfig, check_selection_workloads, load_train_config
from aware_ray.training.run_folder import write_baselines
from aware_ray.training.validation import VALIDATION_BASELINES, validation_rows
from envs.atomic_write import staged_dir
from envs.errors import ConfigError


def build_validation_set(cfg: TrainConfig, out: Path) -> Path:
    """Score the baselines on `cfg`'s validation and write `out` (which must not exist yet)."""
    out = Path(out)
    if out.exists():
        raise ConfigError(f"{out}: already exists; choose another --out")
    if not cfg.run.eval_traces and not cfg.run.eval_families:
        raise ConfigError(f"{cfg.source}: run.eval_traces and run.eval_families are both empty: nothing to validate on")
    out.parent.mkdir(parents=True, exist_ok=True)
    baselines = validation_rows(None, cfg, list(VALIDATION_BASELINES))
    with staged_dir(out) as tmp:
        (tmp / "config.yaml").write_text(yaml.safe_dump(cfg.raw, sort_keys=False))
        write_baselines(tmp, cfg, baselines)
    return out


def main_validation_set(config: str, overrides: list[str], out: str) -> int:
    cfg = load_train_config(config, overrides)
    check_selection_workloads(cfg.run, cfg.source)
    run = cfg.run
    specs = [*run.eval_traces, *run.eval_families]
    print(
        f"aware-ray validation-set: scoring {', '.join(VALIDATION_BASELINES)} on {len(specs)} workloads x "
        f"{run.eval_seeds} seeds from {run.eval_seed_start} ({run.eval_hours:g} h each)",
        flush=True,
    )
    path = build_validation_set(cfg, Path(out))
    print(f"wrote {path}/config.yaml and validation_baselines.json; score candidates with: aware-ray rank {path} ...")
    return 0
