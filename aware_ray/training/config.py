"""Training configs: YAML with three sections, validated key by key, with ``--set`` overrides.

```yaml
env:       {app: social-network, workloads: [...], max_services: 16, history_window: 16, ...}  # EnvConfig keys
ddpg:      {twin_q: false, tau: 0.005, actor_lr: 0.001, exploration: {sigma: 0.3}, ...}      # DDPGConfig.training
run:       {iterations: 40, num_env_runners: 1, eval_every: 5, ...}                        # RunConfig below
bootstrap: {heuristic: hpa+vpa@0.5, offline_episodes: 50, window: 40, ...}  # optional: BootstrapConfig
```
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from envs.config import EnvConfig
from envs.errors import ConfigError
from envs.typed_config import from_mapping
from policies.bootstrap.config import BootstrapConfig

SECTIONS = ("env", "ddpg", "run", "bootstrap")

DDPG_KEYS: dict[str, type | tuple[type, ...]] = {
    "twin_q": bool,
    "policy_delay": int,
    "target_noise": (int, float),
    "target_noise_clip": (int, float),
    "exploration": dict,
    "actor_hiddens": list,
    "critic_hiddens": list,
    "embedding_dim": int,
    "meta_hidden": int,
    "aux_loss_weight": (int, float),
    "workload_loss_weight": (int, float),
    "workload_code_dim": int,
    "saturation_penalty": (int, float),
    "synthetic_contexts": int,
    "context_renewal": int,
    "actor_lr": (int, float),
    "critic_lr": (int, float),
    "tau": (int, float),
    "gamma": (int, float),
    "n_step": int,
    "train_batch_size_per_learner": int,
    "training_intensity": (int, float),
    "num_steps_sampled_before_learning_starts": int,
    "num_steps_sampled_before_actor_learns": int,
    "bc_weight": (int, float),
    "train_meta": bool,
    "replay_buffer_config": dict,
    "grad_clip": (int, float),
}
"""DDPG options a config may set, with their types (see DDPGConfig for what each means)."""


@dataclass
class RunConfig:
    """How a training run is driven."""

    iterations: int = 20
    """Training iterations (each samples at least ``steps_per_iteration`` env steps)."""
    steps_per_iteration: int = 1000
    """Env steps sampled per iteration."""
    num_env_runners: int = 1
    """Env runner actors sampling in parallel (0: sample in the trainer process)."""
    num_envs_per_env_runner: int = 4
    """Envs stepped together by each runner."""
    rollout_fragment_length: int = 16
    """Steps each env contributes per sampling round."""
    eval_every: int = 5
    """Score the policy on the validation workloads every this many iterations (0: only at the end)."""
    checkpoint_every: int = 5
    """Save an RLlib checkpoint every this many iterations (and at the end)."""
    eval_traces: list[str] = field(default_factory=list)
    """Validation traces for model selection. None by default: every shipped trace is either trained
    on or in the held-out list (``envs/traces/split.yaml``), and a choice made on held-out load
    would leave no test of it."""
    eval_families: list[str] = field(default_factory=lambda: ["mixer", "ramp"])
    """Validation synthetic families: instances of training families under names the held-out list
    does not use (``bench.runner.HELD_OUT_FAMILIES``), so each is a load the policy has not seen and
    that no quality figure is measured on. The shipped recipes name six (``default.yaml``)."""
    eval_hours: float = 2.0
    """Simulated hours per validation episode."""
    eval_seeds: int = 1
    """Seeds per validation workload."""
    eval_seed_start: int = 0
    """First validation seed (seeds ``eval_seed_start`` .. ``eval_seed_start + eval_seeds - 1``).
    ``bench ddpg-quality`` and ``evaluate`` draw seeds from 0, so a validation set that names a
    training family the held-out list also uses (``bursty``, ``spikes``) must start at
    ``bench.runner.HELD_OUT_SEEDS`` (100) or later, or ``train``, ``tune`` and ``validation-set``
    refuse it (``check_selection_workloads``): with the same seed it would replay the held-out
    episodes themselves."""
    seed: int = 0
    """Seed of the run (env runners derive theirs from it)."""
    torch_threads: int = 1
    """Torch intra-op threads in the learner."""
    max_env_runner_restarts: int = 100
    """How many times a lost env runner is restarted before the run fails (0: fail at once)."""
    init_from: str = ""
    """Fine-tuning: start from these weights (an RLlib checkpoint, a training run folder or an exported
    policy; see aware_ray.training.init_weights) with fresh replay and schedules. Empty: random weights."""

    def __post_init__(self) -> None:
        for key in ("iterations", "steps_per_iteration", "num_envs_per_env_runner", "rollout_fragment_length"):
            if getattr(self, key) < 1:
                raise ConfigError(f"run.{key}: must be >= 1, got {getattr(self, key)}")
        for key in ("num_env_runners", "eval_every", "checkpoint_every", "max_env_runner_restarts"):
            if getattr(self, key) < 0:
                raise ConfigError(f"run.{key}: must be >= 0, got {getattr(self, key)}")
        if self.eval_seeds < 1:
            raise ConfigError(f"run.eval_seeds: must be >= 1, got {self.eval_seeds}")
        if self.eval_seed_start < 0:
            raise ConfigError(f"run.eval_seed_start: must be >= 0, got {self.eval_seed_start}")
        if not self.eval_hours > 0:
            raise ConfigError(f"run.eval_hours: must be > 0, got {self.eval_hours}")


def check_selection_workloads(run: RunConfig, source: str) -> None:
    """Refuse validation that would choose on held-out episodes: a held-out family
    (``bench.runner.HELD_OUT_FAMILIES``) below seed ``HELD_OUT_SEEDS``. Checked where validation
    chooses (``train``, ``tune``, ``validation-set``), not in every config: ``bench adapt``
    scores on held-out workloads by design."""
    from aware_ray.bench.runner import HELD_OUT_FAMILIES, HELD_OUT_SEEDS

    held = [f for f in run.eval_families if f in HELD_OUT_FAMILIES]
    if held and run.eval_seed_start < HELD_OUT_SEEDS:
        raise ConfigError(
            f"{source}: run.eval_families: {held[0]!r} is a held-out family, whose held-out instances are seeds "
            f"0-{HELD_OUT_SEEDS - 1}; set run.eval_seed_start >= {HELD_OUT_SEEDS} to validate on others"
        )


def _check_type(where: str, value: Any, kind: type | tuple[type, ...]) -> None:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds:
        raise ConfigError(f"{where}: expected {' or '.join(k.__name__ for k in kinds)}, got {value!r}")
    if not isinstance(value, kinds):
        raise ConfigError(f"{where}: expected {' or '.join(k.__name__ for k in kinds)}, got {value!r}")


def parse_ddpg(d: dict[str, Any], source: str) -> dict[str, Any]:
    for key, value in d.items():
        if key not in DDPG_KEYS:
            raise ConfigError(f"{source}: unknown key 'ddpg.{key}' (known: {', '.join(sorted(DDPG_KEYS))})")
        _check_type(f"{source}: ddpg.{key}", value, DDPG_KEYS[key])
    from policies.ddpg.options import check_options  # the one set of rules DDPGConfig.validate applies too

    try:
        check_options(d)
    except ValueError as exc:
        raise ConfigError(f"{source}: ddpg.{exc}") from None
    return d


@dataclass
class TrainConfig:
    """A whole training config, validated."""

    env: EnvConfig
    ddpg: dict[str, Any]
    run: RunConfig
    raw: dict[str, Any]
    """The merged mapping it was built from (written next to the run for reproducibility)."""
    source: str = ""
    bootstrap: BootstrapConfig | None = None
    """AWARE's bootstrapping lifecycle; None trains from scratch."""
    cluster: Any = None
    """``env.backend: kubernetes``: the ``KubernetesEnvSettings`` (each sub-env its own namespace); None: the
    simulator."""


def _parse_value(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``section.key=value`` (dotted, YAML-typed values) to a copy of the mapping."""
    out = copy.deepcopy(raw)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected key=value, e.g. run.iterations=10")
        key, text = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) < 2 or parts[0] not in SECTIONS:
            raise ConfigError(f"--set {item!r}: the key must start with env., ddpg., run. or bootstrap.")
        if out.get(parts[0]) is None:
            out[parts[0]] = {}  # an empty section in YAML (`bootstrap:`) reads as None
        node = out[parts[0]]
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: section '{parts[0]}' is not a mapping")
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {item!r}: {p!r} is not a mapping")
        node[parts[-1]] = _parse_value(text)
    return out


def load_train_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    if not path.is_file():
        raise ConfigError(f"{path}: is a directory, not a config file")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with env, ddpg and run sections")
    return build_train_config(raw, str(path), overrides or [])


def build_train_config(raw: dict[str, Any], source: str, overrides: list[str]) -> TrainConfig:
    # An empty section (`bootstrap:` alone) means "all defaults".
    raw = {k: ({} if v is None and k in SECTIONS else v) for k, v in raw.items()}
    raw = apply_overrides(raw, overrides)
    for key in raw:
        if key not in SECTIONS:
            raise ConfigError(f"{source}: unknown section '{key}' (known: {', '.join(SECTIONS)})")
    for key in SECTIONS:
        if not isinstance(raw.get(key, {}), dict):
            raise ConfigError(f"{source}: section '{key}' must be a mapping")
    env_raw = dict(raw.get("env", {}))
    backend = env_raw.pop("backend", "sim")
    cluster_raw = env_raw.pop("kubernetes", None)
    cluster = None
    if backend == "kubernetes":
        from aware_ray.training.kubernetes_env import KubernetesEnvSettings

        try:
            cluster = KubernetesEnvSettings.from_dict(cluster_raw)
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    elif backend != "sim":
        raise ConfigError(f"{source}: env.backend: expected 'sim' or 'kubernetes', got {backend!r}")
    elif cluster_raw is not None:
        raise ConfigError(f"{source}: env.kubernetes: only with env.backend: kubernetes")
    try:
        env = EnvConfig.from_dict(env_raw)
    except ConfigError as exc:
        # EnvConfig names keys within the env section ("reward.memroy: ..."); here they get its name.
        raise ConfigError(f"{source}: env.{exc}") from None
    try:
        run = from_mapping(RunConfig, raw.get("run", {}), "run")
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    bootstrap = None
    if "bootstrap" in raw:
        try:
            bootstrap = BootstrapConfig.from_dict(raw["bootstrap"])
        except ConfigError as exc:
            raise ConfigError(f"{source}: {exc}") from None
    ddpg = parse_ddpg(raw.get("ddpg", {}), source)
    if ddpg.get("workload_loss_weight") and not (env.history_window and env.context_span):
        raise ConfigError(
            f"{source}: ddpg.workload_loss_weight needs a meta-learner with a load context"
            " (env.history_window and env.context_span > 0)"
        )
    if ddpg.get("synthetic_contexts") and not ddpg.get("workload_loss_weight"):
        raise ConfigError(f"{source}: ddpg.synthetic_contexts needs ddpg.workload_loss_weight > 0")
    buffer = str((ddpg.get("replay_buffer_config") or {}).get("type", ""))
    if ddpg.get("workload_loss_weight") and "Prioritized" in buffer:
        raise ConfigError(
            f"{source}: ddpg.workload_loss_weight needs replayed infos, which {buffer} drops; use EpisodeReplayBuffer"
        )
    if cluster is not None and (bootstrap is not None or ddpg.get("workload_loss_weight")):
        # Both build simulator envs from the runners' env config on the learner side.
        raise ConfigError(
            f"{source}: env.backend: kubernetes does not combine with bootstrap or ddpg.workload_loss_weight yet"
        )
    if cluster is not None and env.time_compression_choices:
        raise ConfigError(
            f"{source}: env.time_compression_choices: the kubernetes backend replays each trace at "
            "env.time_compression; leave the choices empty"
        )
    return TrainConfig(
        env=env,
        ddpg=ddpg,
        run=run,
        raw=raw,
        source=source,
        bootstrap=bootstrap,
        cluster=cluster,
    )
