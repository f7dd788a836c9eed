"""A trained DDPG policy outside RLlib: export, safe loading, and the ``act`` call.

An exported policy is a folder with ``policy.pt`` (the inference module's tensors only, loaded
with ``torch.load(weights_only=True)``, so no pickled code runs) and ``policy.json`` (model
config, spaces and the env settings it was trained with). Evaluation, serving and the
controller load this, not the full RLlib checkpoint with critics and replay state.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.errors import ConfigError
from envs.rules import Rule, parse_rules
from policies.ddpg.torch.ddpg_torch_rl_module import DDPGTorchRLModule

POLICY_FILE = "policy.pt"
META_FILE = "policy.json"
FORMAT_VERSION = 1


def _box(d: dict[str, Any]) -> gym.spaces.Box:
    return gym.spaces.Box(float(d["low"]), float(d["high"]), tuple(d["shape"]), np.float32)


def _space_dict(space: gym.spaces.Box) -> dict[str, Any]:
    return {"low": float(np.min(space.low)), "high": float(np.max(space.high)), "shape": list(space.shape)}


def export_policy(module: Any, folder: str | Path, env_config: dict[str, Any], info: dict[str, Any] | None = None):
    """Write the acting part of `module` (actor, meta-learner) and its description into `folder`.

    Files are written to a temporary name and renamed, so a reader never sees half a policy.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    keep = ("actor.", "meta.")
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items() if k.startswith(keep)}
    meta = {
        "format": FORMAT_VERSION,
        "model_config": _plain(dict(module.model_config)),
        "observation_space": _space_dict(module.observation_space),
        "action_space": _space_dict(module.action_space),
        "env": _plain(env_config),
        "info": _plain(info or {}),
    }
    for name, write in (
        (POLICY_FILE, lambda p: torch.save(state, p)),
        (META_FILE, lambda p: Path(p).write_text(json.dumps(meta, indent=1))),
    ):
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        os.close(fd)
        write(tmp)
        os.replace(tmp, folder / name)


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


class DDPGPolicy:
    """The trained actor (and meta-learner) behind the common ``act(observation, state)`` call."""

    vertical_mode = "in-place"

    def __init__(self, module: Any, env_config: dict[str, Any] | None = None, name: str = "ddpg"):
        self.module = module
        self.env_config = dict(env_config or {})
        self.name = name

    @staticmethod
    def load(path: str | Path, name: str | None = None) -> DDPGPolicy:
        """Load an exported policy folder (or a training run folder, taking its best policy).

        A missing or corrupt policy raises ConfigError naming the path.
        """
        folder = Path(path)
        if folder.is_file():
            folder = folder.parent
        if not (folder / META_FILE).exists() and (folder / "policy" / META_FILE).exists():
            folder = folder / "policy"  # a training run folder: its best policy
        pt, js = folder / POLICY_FILE, folder / META_FILE
        if not pt.exists() or not js.exists():
            raise ConfigError(f"{folder}: not a policy folder (needs {POLICY_FILE} and {META_FILE})")
        try:
            meta = json.loads(js.read_text())
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"unsupported format {meta.get('format')!r}")
            parse_rules(str(meta.get("env", {}).get("rules", "")), f"{js}: env.rules")
            state = torch.load(pt, weights_only=True, map_location="cpu")
            module = DDPGTorchRLModule(
                observation_space=_box(meta["observation_space"]),
                action_space=_box(meta["action_space"]),
                inference_only=True,
                model_config=meta["model_config"],
            )
            missing, unexpected = module.load_state_dict(state, strict=False)
            needed = [k for k in missing if k.startswith(("actor.", "meta."))]
            if needed or unexpected:
                raise ValueError(f"weights do not match the model (missing {needed[:3]}, unexpected {unexpected[:3]})")
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"{folder}: corrupt policy ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        module.eval()
        return DDPGPolicy(module, meta.get("env", {}), name or "ddpg")

    def initial_state(self) -> Any:
        return None

    @torch.no_grad()
    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        obs = torch.as_tensor(np.asarray(observation, dtype=np.float32)).unsqueeze(0)
        return self.module.act(obs)[0].numpy(), state

    @torch.no_grad()
    def embedding(self, observations: np.ndarray) -> np.ndarray:
        """Workload embeddings of a batch of observations (their history windows)."""
        obs = torch.as_tensor(np.asarray(observations, dtype=np.float32))
        if obs.ndim == 1:
            obs = obs.unsqueeze(0)
        return self.module.embedding(obs).numpy()

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The controller rules the policy trained under (``env.rules``), which it acts behind
        wherever it is loaded, so it meets the env it learned in."""
        return parse_rules(str(self.env_config.get("rules", "")), "policy.json env.rules")

    def env_overrides(self) -> dict[str, Any]:
        """The env settings the policy's observation layout needs."""
        keys = ("max_services", "history_window", "context_span", "context_buckets")
        return {k: self.env_config[k] for k in keys if k in self.env_config}
