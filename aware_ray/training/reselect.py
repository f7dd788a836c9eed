"""Choose a finished run's best policy again, with the current scoreboard: ``aware-ray reselect RUN``.

A run keeps the policy that scored best on its validation workloads while it trained. When the
scoreboard's rules change (a comparison found to flatter a policy, say), that choice may change
too, and retraining is not needed to redo it: every ``checkpoints/iter_N`` is scored again on
the run's validation workloads, with the same seeds and windows (so the rollouts repeat those
of training exactly), and the best is exported to ``policy/``. ``validation.json`` and
``train_summary.json`` are rewritten; the earlier history is kept as
``validation_before_reselect.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aware_ray.training.config import TrainConfig, load_train_config
from aware_ray.training.validation import validate
from envs.atomic_write import write_json
from envs.errors import ConfigError


def checkpoint_iterations(run_dir: Path) -> list[int]:
    """Iterations with a ``checkpoints/iter_N`` folder, ascending."""
    names = (p.name.removeprefix("iter_") for p in (run_dir / "checkpoints").glob("iter_*") if p.is_dir())
    return sorted(int(n) for n in names if n.isdigit())


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except ValueError as e:
        reason = (str(e).splitlines() or [""])[0]
        raise ConfigError(f"{path}: unreadable ({type(e).__name__}: {reason})") from e


def run_validation(
    run_dir: Path, command: str, need_summary: bool = True
) -> tuple[dict[str, Any], TrainConfig, list[dict[str, Any]]]:
    """A finished run's summary, config and validation baselines: what scoring on its validation
    needs. Without `need_summary` a folder of ``aware-ray validation-set`` will do (summary {})."""
    needed = ("config.yaml", "validation_baselines.json", *(("train_summary.json",) if need_summary else ()))
    what = "a finished training run" if need_summary else "a finished training run or a validation set"
    for name in needed:
        if not (run_dir / name).is_file():
            raise ConfigError(f"{run_dir / name}: missing ({command} needs {what})")
    summary = _read_json(run_dir / "train_summary.json") if need_summary else {}
    if not isinstance(summary, dict):
        raise ConfigError(f"{run_dir / 'train_summary.json'}: must hold a mapping")
    baselines = _read_json(run_dir / "validation_baselines.json")
    if not isinstance(baselines, list):
        raise ConfigError(f"{run_dir / 'validation_baselines.json'}: must hold a list of scoreboard rows")
    return summary, load_train_config(run_dir / "config.yaml"), baselines


def is_checkpoint(folder: Path) -> bool:
    """Whether `folder` is one of a run's algorithm checkpoints (``runs/NAME/checkpoints/iter_N``)."""
    from policies.ddpg.rllib_compat import MODULE_IN_CHECKPOINT

    return (folder / MODULE_IN_CHECKPOINT).is_dir()


def checkpoint_policy(folder: Path, env_cfg: dict[str, Any] | None = None) -> Any:
    """The policy of an algorithm checkpoint, acting with the training module itself. `env_cfg`:
    the env its run trained in (default: from the run's ``config.yaml``, two folders up), which
    sets the observation layout the policy reads. Any checkpoint can so be scored (``reselect``,
    ``rank``) without exporting it first."""
    from ray.rllib.core.rl_module.rl_module import RLModule

    from policies.ddpg.policy import DDPGPolicy
    from policies.ddpg.rllib_compat import MODULE_IN_CHECKPOINT

    if env_cfg is None:
        run_config = folder.parent.parent / "config.yaml"
        if not run_config.is_file():
            raise ConfigError(f"{run_config}: missing (a checkpoint is scored in its run's env)")
        env_cfg = load_train_config(run_config).env.to_dict()
    path = folder / MODULE_IN_CHECKPOINT
    try:
        module = RLModule.from_checkpoint(str(path.resolve()))
    except Exception as e:  # any failure to load is a bad checkpoint
        raise ConfigError(f"{path}: not a loadable RLModule checkpoint ({type(e).__name__}: {e})") from e
    return DDPGPolicy(module, env_cfg, name="ddpg")


def reselect(run_dir: str | Path) -> dict[str, Any]:
    """Score every per-iteration checkpoint of a finished run again; export the best; return the summary."""
    from policies.ddpg.policy import export_policy

    run_dir = Path(run_dir)
    summary, cfg, baselines = run_validation(run_dir, "reselect")
    iterations = checkpoint_iterations(run_dir)
    if not iterations:
        raise ConfigError(f"{run_dir / 'checkpoints'}: no iter_N checkpoints to score")
    env_cfg = cfg.env.to_dict()
    history: list[dict[str, Any]] = []
    best: dict[str, Any] = {"score": float("-inf"), "iteration": None}
    best_module = None
    for it in iterations:
        policy = checkpoint_policy(run_dir / "checkpoints" / f"iter_{it}", env_cfg)
        module = policy.module
        val = validate(policy, cfg, baselines)
        val["iteration"] = it
        history.append(val)
        print(f"iter {it}: validation score {val['score']:+.2f}, violations {100 * val['violation_rate']:.1f} %")
        if val["score"] > best["score"]:
            best, best_module = {"score": val["score"], "iteration": it}, module
    best_val = next(v for v in history if v["iteration"] == best["iteration"])
    export_policy(best_module, run_dir / "policy", env_cfg, {"iteration": best["iteration"], "validation": best_val})
    before = run_dir / "validation_before_reselect.json"
    if (run_dir / "validation.json").exists() and not before.exists():
        (run_dir / "validation.json").replace(before)
    write_json(run_dir / "validation.json", history)
    summary.update({"best": best, "validation": history, "reselected": True})
    write_json(run_dir / "train_summary.json", summary)
    return summary


def main_reselect(run_dir: str) -> int:
    from aware_ray.evaluation.rollout import one_inference_thread

    one_inference_thread()  # scoring forwards one observation at a time: a second thread only contends
    summary = reselect(run_dir)
    best = summary["best"]
    print(
        f"aware-ray reselect: best validation score {best['score']:+.2f} at iteration {best['iteration']}; "
        f"policy in {Path(run_dir) / 'policy'}"
    )
    return 0
