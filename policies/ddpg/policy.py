"""A trained DDPG policy outside RLlib: export, safe loading, and the ``act`` call.

An exported policy is a folder with ``policy.pt`` (the inference module's tensors only, loaded
with ``torch.load(weights_only=True)``, so no pickled code runs) and ``policy.json`` (model
config, spaces, the env settings it was trained with, the rules it trained under and the
observation schema it reads). Evaluation, serving and the controller load this with torch alone
(``policies.ddpg.actor_module``), not the full RLlib checkpoint with critics and replay state.

Loading compares the policy's observation schema with this code's (``envs.observation_schema``):
a policy trained on other features, scalings or sizes is refused with a one-line error naming the
first difference, never run to give silently wrong actions.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from envs.atomic_write import write_text, write_with
from envs.config import layout_needs, policy_needs
from envs.errors import ConfigError
from envs.observation import ObservationLayout
from envs.observation_schema import first_difference, observation_schema
from envs.rules import Rule, parse_rules
from policies.ddpg.actor_module import ActorModule

POLICY_FILE = "policy.pt"
META_FILE = "policy.json"
FORMAT_VERSION = 2
"""2: ``observation_schema`` and ``rules`` recorded (1 had neither; ``migrate`` upgrades it)."""
ROW_BLOCK = 8
"""Every forward runs on a multiple of this many rows (zero rows pad it). CPU matrix kernels pick
their blocking by batch size, so a row's action could differ in the last bits between a batch of 1
and a batch of 5; padded to whole blocks of 8, each row gets the same bits in any batch. So the
served policy (which batches requests) and ``evaluate`` (one observation at a time) decide alike,
bit for bit (``tests/test_policy_schema.py`` checks batch sizes up to 40)."""


def _box(d: dict[str, Any]) -> gym.spaces.Box:
    return gym.spaces.Box(float(d["low"]), float(d["high"]), tuple(d["shape"]), np.float32)


def _space_dict(space: gym.spaces.Box) -> dict[str, Any]:
    return {"low": float(np.min(space.low)), "high": float(np.max(space.high)), "shape": list(space.shape)}


def layout_of(env_config: dict[str, Any]) -> ObservationLayout:
    """The observation layout of env settings (the keys absent take the env's defaults)."""
    return ObservationLayout(**{k: int(v) for k, v in layout_needs(env_config).items()})


def export_policy(module: Any, folder: str | Path, env_config: dict[str, Any], info: dict[str, Any] | None = None):
    """Write the acting part of `module` (actor, meta-learner) and its description into `folder`.

    Files are written to a temporary name and renamed, so a reader never sees half a policy.
    """
    keep = ("actor.", "meta.")
    state = {k: v.detach().cpu().clone() for k, v in module.state_dict().items() if k.startswith(keep)}
    env = _plain(env_config)
    meta = {
        "format": FORMAT_VERSION,
        "model_config": _plain(dict(module.model_config)),
        "observation_space": _space_dict(module.observation_space),
        "action_space": _space_dict(module.action_space),
        "observation_schema": observation_schema(layout_of(env)),
        "rules": str(env.get("rules", "")),
        "env": env,
        "info": _plain(info or {}),
    }
    _write(Path(folder), state, meta)


def _write(folder: Path, state: dict[str, torch.Tensor] | None, meta: dict[str, Any]) -> None:
    """Weights first, then the description that names them; each replaces its file whole."""
    folder.mkdir(parents=True, exist_ok=True)
    if state is not None:
        write_with(folder / POLICY_FILE, lambda p: torch.save(state, p))
    write_text(folder / META_FILE, json.dumps(meta, indent=1))


def migrate(folder: str | Path) -> None:
    """Upgrade a format-1 ``policy.json`` in place: add the schema of the observation it was
    trained on (its env settings with this code's features) and its rules. Weights are untouched."""
    js = Path(folder) / META_FILE
    meta = json.loads(js.read_text())
    if meta.get("format") == FORMAT_VERSION:
        return
    if meta.get("format") != 1:
        raise ConfigError(f"{js}: format: cannot migrate format {meta.get('format')!r}")
    env = meta.get("env", {})
    meta = {
        "format": FORMAT_VERSION,
        **{k: v for k, v in meta.items() if k in ("model_config", "observation_space", "action_space")},
        "observation_schema": observation_schema(layout_of(env)),
        "rules": str(env.get("rules", "")),
        **{k: v for k, v in meta.items() if k not in ("format", "model_config", "observation_space", "action_space")},
    }
    _write(Path(folder), None, meta)


def _padded(observations: np.ndarray) -> torch.Tensor:
    """`observations` (a batch) as a tensor padded with zero rows to a multiple of ROW_BLOCK."""
    obs = np.asarray(observations, dtype=np.float32)
    rows = -(-len(obs) // ROW_BLOCK) * ROW_BLOCK
    if rows != len(obs):
        obs = np.concatenate([obs, np.zeros((rows - len(obs), *obs.shape[1:]), dtype=np.float32)])
    return torch.as_tensor(obs)


def _plain(x: Any) -> Any:
    return json.loads(json.dumps(x, default=lambda o: o.item() if hasattr(o, "item") else str(o)))


class DDPGPolicy:
    """The trained actor (and meta-learner) behind the common ``act(observation, state)`` call."""

    vertical_mode = "in-place"

    def __init__(self, module: Any, env_config: dict[str, Any] | None = None, name: str = "ddpg", version: str = ""):
        self.module = module
        self.env_config = dict(env_config or {})
        self.name = name
        self.version = version
        """Content hash of the policy's files (``sha256:`` + 12 hex digits); empty for an in-memory module."""
        self.meta: dict[str, Any] = {}
        """The loaded ``policy.json``."""

    @staticmethod
    def load(path: str | Path, name: str | None = None) -> DDPGPolicy:
        """Load an exported policy folder (or a training run folder, taking its best policy).

        A missing or corrupt policy, or one whose observation schema differs from this code's,
        raises ConfigError naming the path and the problem.
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
            raw_meta = js.read_bytes()
            meta = json.loads(raw_meta)
            if meta.get("format") == 1:
                raise ConfigError(
                    f"{js}: format 1 has no observation schema; upgrade it with "
                    f"`python -m policies.ddpg.policy migrate {folder}`"
                )
            if meta.get("format") != FORMAT_VERSION:
                raise ValueError(f"unsupported format {meta.get('format')!r}")
            env = meta.get("env", {})
            parse_rules(str(env.get("rules", "")), f"{js}: env.rules")
            diff = first_difference(meta.get("observation_schema") or {}, observation_schema(layout_of(env)))
            if diff is not None:
                raise ConfigError(f"{js}: observation_schema: {diff}")
            raw_pt = pt.read_bytes()
            state = torch.load(pt, weights_only=True, map_location="cpu")
            obs_space, act_space = _box(meta["observation_space"]), _box(meta["action_space"])
            module = ActorModule(meta["model_config"], int(np.prod(obs_space.shape)), int(np.prod(act_space.shape)))
            missing, unexpected = module.load_state_dict(state, strict=False)
            needed = [k for k in missing if k.startswith(("actor.", "meta."))]
            if needed or unexpected:
                raise ValueError(f"weights do not match the model (missing {needed[:3]}, unexpected {unexpected[:3]})")
        except ConfigError:
            raise
        except Exception as exc:
            raise ConfigError(f"{folder}: corrupt policy ({type(exc).__name__}: {str(exc).splitlines()[0]})") from None
        module.eval()
        module.observation_space, module.action_space = obs_space, act_space
        version = "sha256:" + hashlib.sha256(raw_pt + raw_meta).hexdigest()[:12]
        policy = DDPGPolicy(module, env, name or "ddpg", version)
        policy.meta = meta
        return policy

    def initial_state(self) -> Any:
        return None

    def act(self, observation: np.ndarray, state: Any) -> tuple[np.ndarray, Any]:
        return self.act_batch(np.asarray(observation, dtype=np.float32)[None, :])[0], state

    @torch.no_grad()
    def act_batch(self, observations: np.ndarray) -> np.ndarray:
        """Deterministic actions of a batch of observations in one forward (serving batches requests);
        each row is what ``act`` gives for it alone, bit for bit (see ``ROW_BLOCK``)."""
        return self.module.act(_padded(observations))[: len(observations)].numpy()

    @torch.no_grad()
    def act_and_embed(self, observations: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``act_batch`` and ``embedding`` of a batch in one forward; the embedding is None
        without a meta-learner."""
        obs = np.asarray(observations, dtype=np.float32)
        both = getattr(self.module, "act_and_embedding", None)
        if both is None:  # a training module: two passes
            return self.act_batch(obs), self.embedding(obs) if self.has_embedding else None
        act, emb = both(_padded(obs))
        return act[: len(obs)].numpy(), None if emb is None else emb[: len(obs)].numpy()

    @torch.no_grad()
    def embedding(self, observations: np.ndarray) -> np.ndarray:
        """Workload embeddings of a batch of observations (their history windows)."""
        obs = np.asarray(observations, dtype=np.float32)
        if obs.ndim == 1:
            obs = obs[None, :]
        return self.module.embedding(_padded(obs))[: len(obs)].numpy()

    @property
    def has_embedding(self) -> bool:
        return getattr(self.module, "meta", None) is not None

    @property
    def rules(self) -> tuple[Rule, ...]:
        """The controller rules the policy trained under (``env.rules``), which it acts behind
        wherever it is loaded, so it meets the env it learned in."""
        return parse_rules(str(self.env_config.get("rules", "")), "policy.json env.rules")

    def env_overrides(self) -> dict[str, Any]:
        """The env settings the policy's observation layout needs."""
        return layout_needs(self.env_config)

    def history_needs(self) -> dict[str, Any]:
        """The env settings its history rows need besides the layout (``envs.config.policy_needs``)."""
        return policy_needs(self.env_config)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "migrate":
        sys.exit("usage: python -m policies.ddpg.policy migrate POLICY_FOLDER")
    migrate(sys.argv[2])
