"""Start training from the weights of an earlier run: fine-tuning (``run.init_from``).

A fresh algorithm is built as usual (its own replay buffer, optimisers, step counters and
exploration schedule) and only its network weights are replaced before the first iteration.
That is what fine-tuning a pre-trained policy on a new workload means: the new run collects its
own experience and counts its own env steps, which is what adaptation is measured in
(``aware-ray bench adapt``). ``--resume`` is the other thing: it continues the same run, replay
and schedules included.

``run.init_from`` names one of:

- an RLlib algorithm checkpoint (``OUT/checkpoints/iter_N``, ``best``, ``latest``): actor,
  critic(s), meta-learner and their target networks;
- a training run folder: its ``checkpoints/best`` (the policy validation selected);
- an exported policy folder (``policy.pt`` + ``policy.json``, e.g. ``policies/pretrained``): the
  actor and the meta-learner only, as export keeps them; the critics start fresh, and the target
  actor and meta-learner start as copies of the loaded ones.

Weights of heads the new model does not have are left out (the pre-training's workload
classifier, sized by its own workload count, when the fine-tuning trains no such head). A
network the new model has but the source lacks (other than the critics of an exported policy),
or a weight of another shape, is a one-line error: the layouts differ (history window, load
context, hidden sizes) and the weights would not mean the same thing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from envs.errors import ConfigError

ACTING = ("actor.", "meta.")
"""What an exported policy holds."""
TARGET_OF = {"actor.": "target_actor.", "meta.": "target_meta."}
"""Target copies an exported policy's networks seed."""
CLASSIFIER = ("meta.classify.", "target_meta.classify.")
"""The workload-identification head: sized by the training run's workload count, so a run on other
workloads starts its own."""


def resolve_source(path: str | Path) -> tuple[str, Path]:
    """(kind, folder) of an ``init_from`` path: ``checkpoint`` or ``policy``; ConfigError when it is neither."""
    from policies.ddpg.policy import META_FILE, POLICY_FILE

    folder = Path(path)
    if not folder.exists():
        raise ConfigError(f"run.init_from: {folder}: not found")
    if (folder / "checkpoints" / "best").is_dir():
        folder = folder / "checkpoints" / "best"  # a training run folder
    if (folder / "rllib_checkpoint.json").exists():
        return "checkpoint", folder.resolve()
    if (folder / POLICY_FILE).exists() and (folder / META_FILE).exists():
        return "policy", folder.resolve()
    raise ConfigError(
        f"run.init_from: {folder}: not an RLlib checkpoint, a training run folder or an exported policy folder"
    )


def source_state(path: str | Path) -> tuple[str, dict[str, torch.Tensor]]:
    """The kind of source and its network weights."""
    kind, folder = resolve_source(path)
    try:
        if kind == "checkpoint":
            from ray.rllib.core.rl_module.rl_module import RLModule

            from policies.ddpg.rllib_compat import MODULE_IN_CHECKPOINT

            where = str(folder / MODULE_IN_CHECKPOINT)
            module = RLModule.from_checkpoint(where)
            # The module alone has no target networks (the learner makes them): make them, then
            # restore again so the checkpoint's targets fill them.
            module.make_target_networks()
            module.restore_from_path(where)
            state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        else:
            from policies.ddpg.policy import POLICY_FILE

            state = torch.load(folder / POLICY_FILE, weights_only=True, map_location="cpu")
    except Exception as exc:  # a half-written or foreign folder
        raise ConfigError(f"run.init_from: {folder}: unreadable ({type(exc).__name__}: {str(exc)[:200]})") from None
    return kind, state


def merged_state(
    own: dict[str, torch.Tensor], source: dict[str, torch.Tensor], kind: str
) -> tuple[dict[str, torch.Tensor], dict[str, list[str]]]:
    """`own` (the new module's state) with `source`'s weights put in; and what was loaded,
    dropped (source heads the new model lacks) and kept fresh (critics of an exported policy).

    Raises ConfigError on a shape mismatch or a network the source should have but lacks.
    """
    if kind == "policy":
        source = {k: v for k, v in source.items() if k.startswith(ACTING)}
        for prefix, target in TARGET_OF.items():
            source.update({target + k[len(prefix) :]: v for k, v in list(source.items()) if k.startswith(prefix)})
    out = dict(own)
    loaded, dropped, fresh = [], [], []
    for key, value in source.items():
        if key not in own:
            dropped.append(key)
            continue
        if tuple(own[key].shape) != tuple(value.shape):
            raise ConfigError(
                f"run.init_from: weight {key!r} has shape {tuple(value.shape)}, the model's is {tuple(own[key].shape)}"
                " (another history window, load context or hidden size?)"
            )
        out[key] = value.to(own[key].dtype).clone()
        loaded.append(key)
    for key in own:
        if key in source:
            continue
        if kind == "policy" and not key.startswith((*ACTING, *TARGET_OF.values())):
            fresh.append(key)  # the critics, which export does not keep
        elif key.startswith(CLASSIFIER):
            fresh.append(key)
        else:
            raise ConfigError(
                f"run.init_from: the source has no weight {key!r} (a model with a meta-learner from one"
                " without, twin critics from one critic?)"
            )
    return out, {"loaded": loaded, "dropped": dropped, "fresh": fresh}


def load_initial_weights(algo: Any, path: str | Path) -> dict[str, Any]:
    """Put the weights of `path` into `algo`'s learner module and its env runners' copies.

    Returns what was done: the source's kind and folder and the loaded/dropped/fresh counts.
    """
    from ray.rllib.core import DEFAULT_MODULE_ID

    kind, state = source_state(path)
    report: dict[str, Any] = {}

    def apply(learner: Any) -> dict[str, list[str]]:
        module = learner.module[DEFAULT_MODULE_ID]
        merged, what = merged_state(module.state_dict(), state, kind)
        module.load_state_dict(merged)
        return what

    what = next(iter(algo.learner_group.foreach_learner(apply))).get()
    algo.env_runner_group.sync_weights(from_worker_or_learner_group=algo.learner_group, inference_only=True)
    report.update({"kind": kind, "source": str(resolve_source(path)[1]), **{k: len(v) for k, v in what.items()}})
    return report
