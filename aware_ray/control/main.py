"""``aware-ray control``: the command line over ``load_control_config`` and ``Controller``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from aware_ray.control.config import load_control_config
from aware_ray.control.loop import Controller
from cluster.errors import ClusterError


def main_control(args: argparse.Namespace) -> int:
    from aware_ray.evaluation.rollout import one_inference_thread

    one_inference_thread()  # a policy acting in this process forwards a few rows an interval
    overrides: dict = {
        "endpoint": args.endpoint,
        "timeout_ms": args.timeout_ms,
        "policy": args.policy,
        "mode": args.mode,
        "intervals": args.intervals,
        "out": args.out,
    }
    if args.speed is not None:
        overrides["speed"] = "max" if args.speed == "max" else _speed(args.speed)
    if args.canary is not None:
        overrides["canary"] = [a for a in args.canary.split(",") if a]
    if args.app is not None:
        app = {"app": args.app, "backend": args.backend or "sim"}
        for key in ("trace", "family", "seed", "max_hours", "redis_password_file"):
            if getattr(args, key, None) is not None:
                app[key] = getattr(args, key)
        kube = {"namespace": getattr(args, "namespace", None), "redis_url": getattr(args, "redis_url", None)}
        if getattr(args, "allowed_namespaces", None) is not None:
            kube["allowed_namespaces"] = [n for n in args.allowed_namespaces.split(",") if n]
        kube = {k: v for k, v in kube.items() if v is not None}
        if kube:
            app["kubernetes"] = kube
        overrides["apps"] = [app]
    if getattr(args, "dry_run", None):
        overrides["dry_run"] = True
    if args.experience is not None or args.experience_file is not None:
        overrides["experience"] = {"redis": args.experience, "file": args.experience_file}
    cfg = load_control_config(args.config, overrides, fallback=getattr(args, "fallback", None))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        summary = Controller(cfg, backends=_backends(cfg)).run()
    except ClusterError as exc:  # fatal ones only (NotManaged, RbacDenied): the loop holds on the others
        print(f"aware-ray control: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


def _backends(cfg) -> dict | None:
    """The live backends of the config's ``backend: kubernetes`` apps (None when all are simulated)."""
    if not any(a.backend == "kubernetes" for a in cfg.apps):
        return None
    from aware_ray.control.kubernetes import kubernetes_backends

    return kubernetes_backends(cfg)


def _speed(text: str) -> float:
    from envs.errors import ConfigError

    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--speed: a number or 'max', got {text!r}") from None
    return value
