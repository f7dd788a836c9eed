"""Training against copies of an app in a cluster: ``env.backend: kubernetes`` in a training config.

Env runner ``i``, sub-env ``j`` drives its own namespace, ``{namespace_prefix}-{i}-{j}`` or the one
``namespaces: {"i-j": name}`` gives (``cluster.namespaces.namespace_for``), through a
``KubernetesBackend``. The env code is the simulator's (``AutoscaleEnv``); only the episode start
differs: ``reset`` picks the episode's window of a trace as the simulator would, scales the app back
to its initial state, waits until it is ready and points the namespace's load generator at that
window (``LoadInstruction`` through Redis), then observes.

Why here and not in ``envs/``: envs never import the cluster side (redis, kubernetes); the training
package may. Why SyncVectorEnv (RLlib's ``gym_env_vectorize_mode="SYNC"``) and not the simulator's
``AutoscaleVectorEnv``: each sub-env is a separate cluster namespace that waits on the wall clock;
there is no batch to step at once. RLlib hands every sub-env of a runner the same ``EnvContext``
(vector_index 0), so the sub-env index is the creation order within the runner, modulo the
runner's number of envs (a runner that rebuilds its envs starts again at 0).
"""

from __future__ import annotations

import itertools
import math
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

import envs
from envs.autoscale_env import AutoscaleEnv
from envs.errors import ConfigError
from envs.workload import TraceWorkload, resample

KEYS = ("namespace_prefix", "namespaces", "backend", "redis_password_file", "rate_scale")


@dataclass(frozen=True)
class KubernetesEnvSettings:
    """The ``env.kubernetes`` section of a training config."""

    namespace_prefix: str = "aware-train"
    """Env runner i, sub-env j drives namespace ``{namespace_prefix}-{i}-{j}``."""
    namespaces: Mapping[str, str] = field(default_factory=dict)
    """``"i-j" -> namespace`` instead of the prefix (every pair used must be listed)."""
    backend: Mapping[str, Any] = field(default_factory=dict)
    """``KubernetesBackendConfig`` keys but ``namespace`` (redis_url, vertical, interval_s, ready_timeout_s...);
    ``allowed_namespaces`` defaults to each env's own namespace."""
    redis_password_file: str | None = None
    """A file holding the Redis password (a mounted Secret)."""
    rate_scale: float | None = None
    """Multiplier on the trace's requests per second for the load generator; default: the scale that makes
    the window's peak the env's ``peak_rps``, as the simulator replays it."""

    @classmethod
    def from_dict(cls, data: Any, where: str = "env.kubernetes") -> KubernetesEnvSettings:
        if data is None:
            data = {}
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {data!r}")
        unknown = sorted(set(data) - set(KEYS))
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown field (allowed: {', '.join(KEYS)})")
        s = cls(**{k: data[k] for k in KEYS if k in data and data[k] is not None})
        if not isinstance(s.namespaces, Mapping):
            raise ConfigError(f"{where}.namespaces: expected a mapping of 'i-j' to namespace names")
        if not isinstance(s.backend, Mapping):
            raise ConfigError(f"{where}.backend: expected a mapping of KubernetesBackendConfig keys")
        if "namespace" in s.backend:
            raise ConfigError(f"{where}.backend.namespace: set by the env runner; use namespace_prefix or namespaces")
        if "redis_password" in s.backend:
            raise ConfigError(f"{where}.backend.redis_password: give redis_password_file (a mounted Secret)")
        if s.rate_scale is not None and not (
            isinstance(s.rate_scale, int | float) and math.isfinite(s.rate_scale) and s.rate_scale > 0
        ):
            raise ConfigError(f"{where}.rate_scale: must be a number > 0, got {s.rate_scale!r}")
        first = next(iter(s.namespaces), "0-0")
        try:
            ns = s.namespace(*map(int, first.split("-", 1)))
        except ValueError as exc:
            raise ConfigError(f"{where}.{exc}") from None
        s.backend_config(ns, f"{where}.backend", read_password=False)
        return s

    def namespace(self, runner: int, vector: int) -> str:
        from cluster.namespaces import namespace_for

        return namespace_for(self.namespace_prefix, runner, vector, dict(self.namespaces) or None)

    def backend_config(self, namespace: str, where: str = "env.kubernetes.backend", read_password: bool = True):
        from cluster.backend_config import KubernetesBackendConfig

        data = {"allowed_namespaces": [namespace], **dict(self.backend), "namespace": namespace}
        cfg = KubernetesBackendConfig.from_dict(data, where)
        if read_password and self.redis_password_file:
            from aware_ray.control.kubernetes import read_password as read

            cfg = replace(cfg, redis_password=read(self.redis_password_file, "env.kubernetes"))
        return cfg

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["namespaces"], d["backend"] = dict(self.namespaces), dict(self.backend)
        return d


class KubernetesAutoscaleEnv(AutoscaleEnv):
    """``AutoscaleEnv`` over a ``KubernetesBackend``: each episode replays a trace window on the real app."""

    def __init__(self, config: dict[str, Any], backend: Any, settings: KubernetesEnvSettings):
        super().__init__(config, backend=backend)
        self.settings = settings
        traces = [w for w in self.workloads if isinstance(w, TraceWorkload)]
        if len(traces) != len(self.workloads) or not traces:
            raise ConfigError(
                "env.workloads: the kubernetes backend replays traces through the load generator; "
                "give trace:FILE workloads only"
            )
        self.load = None
        """The last episode's ``LoadInstruction``."""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        from cluster.loadgen_control import LoadInstruction

        if seed is not None:
            super(AutoscaleEnv, self).reset(seed=seed)  # gymnasium seeds np_random
        rng = self.np_random
        wl: TraceWorkload = self.workloads[int(rng.integers(len(self.workloads)))]
        n, dt, tc = self.config.episode_steps, self.config.interval_s, self.config.time_compression
        series = wl.series(dt)
        offset = int(rng.integers(0, len(series) - n + 1)) if len(series) >= n else 0
        rates = series[(offset + np.arange(n)) % len(series)].copy()
        raw_peak = float(np.max(resample(wl.trace.t_seconds, wl.trace.rps, dt, tc)))
        scale = self.settings.rate_scale or wl.peak_rps / raw_peak
        self.load = LoadInstruction(
            trace=_trace_name(wl),
            start_s=offset * dt * tc,
            duration_s=n * dt * tc,
            rate_scale=float(scale),
            time_compression=float(tc),
            episode=uuid.uuid4().hex[:12],
        )
        self.backend.reset(self.load)
        return super().reset(options={"rates": rates, "workload": wl.name, **(options or {})})


def _trace_name(wl: TraceWorkload) -> str:
    """A shipped trace by its file name (the load generator's image ships the same traces), else its path."""
    path = Path(wl.trace.path)
    shipped = Path(envs.__file__).parent / "traces"
    return path.name if path.parent.resolve() == shipped.resolve() else str(path)


_created: dict[int, itertools.count] = {}


def make_kubernetes_env(config: Any) -> KubernetesAutoscaleEnv:
    """Env creator for RLlib (SYNC vectorisation): the env of this runner's next sub-env (module docstring)."""
    from cluster.kubernetes_backend import KubernetesBackend

    cfg = dict(config)
    cfg.pop("backend", None)
    cfg.pop("num_envs", None)
    raw = dict(cfg.pop("kubernetes", None) or {})
    per_runner = int(raw.pop("envs_per_runner", 1))
    settings = KubernetesEnvSettings.from_dict(raw)
    runner = int(getattr(config, "worker_index", 0))
    vector = int(getattr(config, "vector_index", 0))
    if vector == 0:
        vector = next(_created.setdefault(runner, itertools.count())) % max(per_runner, 1)
    namespace = settings.namespace(runner, vector)
    bc = settings.backend_config(namespace)
    if "interval_s" not in settings.backend:
        bc = replace(bc, interval_s=float(cfg.get("interval_s", bc.interval_s)))
    from envs.app import load_app
    from envs.config import EnvConfig

    app = load_app(EnvConfig.from_dict(dict(cfg)).app)
    return KubernetesAutoscaleEnv(cfg, KubernetesBackend(app, bc), settings)


def make_training_env(config: Any) -> Any:
    """The env creator ``train`` registers: the simulator's (one vector env per runner) or, with
    ``backend: kubernetes`` in the env config, one cluster namespace per sub-env."""
    if dict(config).get("backend") == "kubernetes":
        return make_kubernetes_env(config)
    from envs.vector_env import make_autoscale_env

    return make_autoscale_env(config)
