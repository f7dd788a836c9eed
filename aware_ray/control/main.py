"""``aware-ray control``: the command line over ``load_control_config`` and ``Controller``."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from aware_ray.control.config import load_control_config
from aware_ray.control.loop import Controller


def main_control(args: argparse.Namespace) -> int:
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
        for key in ("trace", "family", "seed", "max_hours"):
            if getattr(args, key) is not None:
                app[key] = getattr(args, key)
        overrides["apps"] = [app]
    if args.experience is not None or args.experience_file is not None:
        overrides["experience"] = {"redis": args.experience, "file": args.experience_file}
    cfg = load_control_config(args.config, overrides)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    summary = Controller(cfg).run()
    print(json.dumps(summary))
    return 0


def _speed(text: str) -> float:
    from envs.errors import ConfigError

    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--speed: a number or 'max', got {text!r}") from None
    return value
