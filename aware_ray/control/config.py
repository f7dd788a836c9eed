"""The controller's settings (``aware-ray control --config control.yaml``), validated field by field."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from envs.errors import ConfigError
from policies.recommended import RECOMMENDED


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AppConfig(_Model):
    """One app under control."""

    name: str = ""
    """Key of this app in logs, the report and the experience stream (default: ``app``)."""
    app: str = "social-network"
    """App name or YAML path (what the endpoint must serve)."""
    backend: Literal["sim", "kubernetes"] = "sim"
    """Where metrics come from and decisions go: ``sim`` (the simulator) or ``kubernetes`` (the app's
    Deployments in a cluster, metrics from the collector's Redis; see ``kubernetes:``)."""
    kubernetes: dict[str, Any] = Field(default_factory=dict)
    """Kubernetes: ``cluster.backend_config.KubernetesBackendConfig`` keys (namespace, allowed_namespaces,
    redis_url, vertical, staleness_s...), checked when the config loads."""
    redis_password_file: str | None = None
    """Kubernetes: a file holding the Redis password (a mounted Secret); never the password itself."""
    trace: str | None = None
    """Simulator: the trace to replay (as ``evaluate --trace``)."""
    family: str | None = None
    """Simulator: a synthetic family instead of a trace."""
    seed: int = 0
    """Simulator: the seed (as ``evaluate --seeds``: the arrival noise, the trace window, the simulator)."""
    max_hours: float = Field(6.0, gt=0)
    """Simulator: longest simulated time (as ``evaluate --max-hours``)."""

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if v and not all(c.isalnum() or c in "-_." for c in v):
            raise ValueError("letters, digits, '-', '_' and '.' only")
        return v


class ExperienceConfig(_Model):
    """Where each interval's experience record goes."""

    redis: str | None = None
    """``redis://host:port/db``: one stream per app, ``aware:experience:<app>``."""
    maxlen: int = Field(100_000, ge=1)
    """Records kept per stream (MAXLEN, approximate trimming)."""
    buffer: int = Field(10_000, ge=1)
    """Records buffered in memory while Redis is down; the oldest are dropped (and counted) beyond."""
    file: str | None = None
    """A JSONL file every record is also appended to (an export ``train --experience`` reads too)."""


class ControlConfig(_Model):
    """Everything ``aware-ray control`` needs."""

    endpoint: str = "http://127.0.0.1:8000"
    """Base URL of the policy endpoint (``aware-ray serve``)."""
    timeout_ms: float = Field(300.0, gt=0)
    """Longest wait for the endpoint per interval; past it the heuristic decides that interval."""
    policy: str = RECOMMENDED
    """The spec the endpoint serves; its rules are applied again here with each app's state."""
    mode: Literal["shadow", "canary", "active"] = "active"
    """shadow: the heuristic acts, the policy's decisions are recorded; canary: the policy acts on
    ``canary`` apps only; active: the policy acts everywhere."""
    canary: list[str] = Field(default_factory=list)
    """Apps (names) where the policy acts in canary mode."""
    speed: float | Literal["max"] = 1.0
    """Simulator: intervals run this many times faster than real time; ``max`` as fast as possible."""
    intervals: int | None = Field(None, ge=1)
    """Stop after this many intervals (default: the end of the simulated series)."""
    apps: list[AppConfig] = Field(default_factory=lambda: [AppConfig()], min_length=1)
    bootstrap: dict[str, Any] | None = None
    """The bootstrap fallback (``policies.bootstrap.config`` keys); absent: the policy acts from the first
    interval and the heuristic decides only when the endpoint or the metrics fail."""
    experience: ExperienceConfig = Field(default_factory=ExperienceConfig)
    env: dict[str, Any] = Field(default_factory=dict)
    """Extra EnvConfig keys (guard, noise...), as ``evaluate``'s."""
    dry_run: bool = False
    """Kubernetes: send every change with server-side dry run and log it; nothing in the cluster changes."""
    out: str = "runs/control"
    """Folder of the report (intervals.jsonl, summary.json)."""

    def model_post_init(self, _: Any) -> None:
        for a in self.apps:
            a.name = a.name or Path(a.app).stem
        names = [a.name for a in self.apps]
        if len(set(names)) != len(names):
            raise ValueError("apps: names must be unique (set name: for a second instance of an app)")
        unknown = set(self.canary) - set(names)
        if unknown:
            raise ValueError(f"canary: unknown app {sorted(unknown)[0]!r}")
        if isinstance(self.speed, float) and self.speed <= 0:
            raise ValueError("speed: must be > 0 or 'max'")


def load_control_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None, fallback: str | None = None
) -> ControlConfig:
    """The YAML at `path` (its ``control:`` section when it has one) with `overrides`; ConfigError names the field.

    `fallback` (``--fallback``): the bootstrap section's heuristic, its other keys kept (or their
    defaults), or ``off`` for no section: a Deployment's args can turn the fallback on without a
    config file."""
    data: dict[str, Any] = {}
    if path is not None:
        try:
            loaded = yaml.safe_load(Path(path).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read ({str(exc).splitlines()[0]})") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping")
        data = dict(loaded.get("control", loaded))
        if "bootstrap" in loaded and "control" in loaded:
            data.setdefault("bootstrap", loaded["bootstrap"])
    data.update({k: v for k, v in (overrides or {}).items() if v is not None})
    if fallback == "off":
        data.pop("bootstrap", None)
    elif fallback is not None:
        from policies.bootstrap.config import BootstrapConfig

        try:
            BootstrapConfig(heuristic=fallback)
        except ConfigError as exc:
            raise ConfigError(f"--fallback: {exc} (or 'off')") from None
        data["bootstrap"] = {**(data.get("bootstrap") or {}), "heuristic": fallback}
    try:
        cfg = ControlConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "control"
        raise ConfigError(f"{path or 'control'}: {where}: {err['msg']}") from None
    if cfg.bootstrap is not None:
        from policies.bootstrap.config import BootstrapConfig

        BootstrapConfig.from_dict(cfg.bootstrap)  # one-line ConfigError naming bootstrap.<key>
    for a in cfg.apps:
        if a.backend == "sim" and not (a.trace or a.family):
            raise ConfigError(f"{path or 'control'}: apps.{a.name}: the sim backend needs a trace or a family")
        if a.backend == "kubernetes":
            from aware_ray.control.kubernetes import backend_config

            backend_config(a, cfg.dry_run, f"{path or 'control'}: apps.{a.name}.kubernetes")
    return cfg
