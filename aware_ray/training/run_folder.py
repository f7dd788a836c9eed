"""Run folders that cannot lie: what a run folder holds must match the config that reads it.

Two things used to drift silently. A run's ``validation_baselines.json`` was reused whatever
``run.eval_*`` or the env now said, so a resumed or re-pointed run compared its policy with
baselines scored on other workloads. And a bad checkpoint or state file was found only after
minutes of baseline scoring, when RLlib failed to restore it. Here the baselines carry a
fingerprint of everything that shapes them (``validation_baselines.meta.json``), and a resume
is checked whole before any work starts; each problem is one line naming the file.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from aware_ray.training.config import TrainConfig
from aware_ray.training.validation import VALIDATION_BASELINES, eval_env_config, validation_rows
from envs.atomic_write import write_json
from envs.errors import ConfigError

BASELINES = "validation_baselines.json"
BASELINES_META = "validation_baselines.meta.json"
CHECKPOINT = Path("checkpoints") / "latest"
STATE = "train_state.json"


def baselines_identity(cfg: TrainConfig) -> dict[str, Any]:
    """Everything the validation baselines depend on: the env they run in and the validation set."""
    run = cfg.run
    identity = {
        "env": eval_env_config(cfg),
        "eval_traces": list(run.eval_traces),
        "eval_families": list(run.eval_families),
        "eval_hours": run.eval_hours,
        "eval_seeds": run.eval_seeds,
        "baselines": list(VALIDATION_BASELINES),
    }
    if run.eval_seed_start:  # named only when set, so folders built before the key keep their fingerprint
        identity["eval_seed_start"] = run.eval_seed_start
    return identity


def fingerprint(identity: dict[str, Any]) -> str:
    text = json.dumps(identity, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    keys = sorted(set(old) | set(new))
    out = []
    for key in keys:
        a, b = old.get(key), new.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += _differences(a, b, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}")
    return out


def write_baselines(folder: Path, cfg: TrainConfig, rows: list[dict[str, Any]]) -> None:
    identity = baselines_identity(cfg)
    write_json(folder / BASELINES_META, {"fingerprint": fingerprint(identity), "identity": identity})
    write_json(folder / BASELINES, rows)


def baselines_mismatch(folder: Path, cfg: TrainConfig) -> str | None:
    """Why the folder's baselines are not this config's (None when they are)."""
    meta_file = folder / BASELINES_META
    if not (folder / BASELINES).exists():
        return f"{BASELINES} is missing"
    if not meta_file.exists():
        return f"{BASELINES} has no {BASELINES_META}, so what it was scored on is unknown"
    try:
        meta = json.loads(meta_file.read_text())
        stored, identity = meta["fingerprint"], meta["identity"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return f"{BASELINES_META} is unreadable ({type(exc).__name__})"
    new = baselines_identity(cfg)
    if stored == fingerprint(new):
        return None
    changed = _differences(json.loads(json.dumps(identity, default=str)), json.loads(json.dumps(new, default=str)))
    return f"they were scored with other settings ({', '.join(changed) or 'fingerprint'} changed)"


def load_or_score_baselines(
    folder: Path, cfg: TrainConfig, resume: bool, who: str = "aware-ray train"
) -> list[dict[str, Any]]:
    """The folder's baselines when they are this config's; else scored again, or refused on resume
    (a resumed run's validation history was scored against the old ones and would not compare)."""
    why = baselines_mismatch(folder, cfg)
    if why is None:
        return json.loads((folder / BASELINES).read_text())
    if resume and (folder / BASELINES).exists():
        raise ConfigError(f"{folder / BASELINES}: cannot resume: {why}; train into a new --out")
    if (folder / BASELINES).exists():
        print(f"{who}: the validation baselines are scored again: {why}", flush=True)
    print(f"{who}: scoring the validation baselines ({', '.join(VALIDATION_BASELINES)})", flush=True)
    rows = validation_rows(None, cfg, list(VALIDATION_BASELINES))
    write_baselines(folder, cfg, rows)
    return rows


def check_resume(folder: Path) -> dict[str, Any]:
    """The run's training state, after checking that its checkpoint can be restored (one line each)."""
    state_file, ckpt = folder / STATE, folder / CHECKPOINT
    if not ckpt.is_dir():
        raise ConfigError(f"{ckpt}: no checkpoint to resume from")
    try:
        state = json.loads(state_file.read_text())
        int(state["iteration"])
        float(state["best"]["score"])
    except FileNotFoundError:
        raise ConfigError(f"{state_file}: missing; the run cannot resume") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{state_file}: corrupt ({type(exc).__name__}); the run cannot resume") from None
    manifest = ckpt / "rllib_checkpoint.json"
    try:
        json.loads(manifest.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{manifest}: corrupt or missing ({type(exc).__name__}); the run cannot resume") from None
    for path in sorted(ckpt.rglob("*")):
        if not path.is_file():
            continue
        try:
            if path.suffix == ".json":
                json.loads(path.read_text())
            elif path.suffix == ".pkl":
                with path.open("rb") as f:
                    pickle.load(f)  # our own checkpoint, loaded as RLlib loads it
        except Exception as exc:  # any unpickling failure means RLlib's restore would fail too
            raise ConfigError(f"{path}: corrupt ({type(exc).__name__}); the run cannot resume") from None
    return state
