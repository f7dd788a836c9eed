"""The shipped Serve and controller configs are valid as their tools read them."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from aware_ray.cli import main
from aware_ray.control.config import load_control_config
from aware_ray.serving.app import build_app
from envs.errors import ConfigError
from policies import registry
from policies.bootstrap.config import BootstrapConfig

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def test_serve_yaml_is_a_valid_serve_config_and_builds():
    from ray.serve.schema import ServeDeploySchema

    data = yaml.safe_load((CONFIGS / "serve.yaml").read_text())
    schema = ServeDeploySchema.model_validate(data)
    assert schema.applications[0].import_path == "aware_ray.serving.app:build_app"
    app = data["applications"][0]
    assert app["deployments"][0]["ray_actor_options"]["num_cpus"] == 1
    assert app["deployments"][0]["user_config"]["policy"] == app["args"]["policy"]
    build_app(app["args"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"policy": "oracle"}, "cannot be served"),
        ({"policy": "safe:ddpg:pretrained"}, "controller"),
        ({"policy": "stable@120:safe@0.7:ddpg:pretrained"}, "controller"),
        ({"policy": "nope"}, "unknown policy"),
        ({"apps": ["no-such-app"]}, "no-such-app"),
        ({"polcy": "x"}, "unknown key 'polcy'"),
    ],
)
def test_build_app_refuses_bad_args_in_one_line(args, message):
    with pytest.raises((ConfigError, ValueError), match=message):
        build_app(args)


def test_control_yaml_loads():
    cfg = load_control_config(CONFIGS / "control.yaml")
    assert cfg.mode == "active" and [a.name for a in cfg.apps] == ["social-network", "chain3"]
    # The controller runs the deployment behind the bootstrap fallback as `evaluate` scores it
    # with safe@0.7:SPEC (docs/results/2026-12-07-jump-validation.md).
    assert cfg.bootstrap == {
        "heuristic": "hpa+vpa@0.7",
        "window": 40,
        "violation_margin": 0.05,
        "cost_margin": 0.25,
        "cooldown": 80,
    }
    # ... the very settings `safe@0.7:` builds.
    assert registry.fallback_config("safe@0.7", "safe@0.7:" + cfg.policy) == BootstrapConfig.from_dict(cfg.bootstrap)


@pytest.mark.parametrize(
    ("fallback", "bootstrap"),
    [
        ("off", None),
        (
            "hpa@0.6",
            {"heuristic": "hpa@0.6", "window": 40, "violation_margin": 0.05, "cost_margin": 0.25, "cooldown": 80},
        ),
    ],
)
def test_fallback_flag_replaces_the_heuristic_or_turns_it_off(fallback, bootstrap):
    """``--fallback`` (a Deployment's args, no config file) sets the heuristic and keeps the other keys."""
    assert load_control_config(CONFIGS / "control.yaml", fallback=fallback).bootstrap == bootstrap
    bare = load_control_config(None, {"apps": [{"app": "chain3", "family": "step"}]}, fallback="hpa+vpa@0.7")
    assert BootstrapConfig.from_dict(bare.bootstrap) == registry.fallback_config("safe@0.7", "safe@0.7:x")


def test_control_yamls_bootstrap_block_is_checked(tmp_path: Path):
    """A bad value in the ``bootstrap:`` section is one line naming the key."""
    path = tmp_path / "control.yaml"
    path.write_text((CONFIGS / "control.yaml").read_text().replace("window: 40", "window: 0"))
    with pytest.raises(ConfigError, match=r"bootstrap\.window"):
        load_control_config(path)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--app", "chain3"], "needs a trace or a family"),
        (["--app", "chain3", "--family", "step", "--speed", "fast"], "--speed"),
        (["--app", "chain3", "--family", "step", "--timeout-ms", "-1"], "timeout_ms"),
        (["--app", "chain3", "--family", "step", "--mode", "canary", "--canary", "zz"], "canary"),
        (["--app", "chain3", "--family", "step", "--policy", "safe:ddpg:pretrained"], "bootstrap"),
        (["--app", "chain3", "--family", "step", "--policy", "safe@0.7:ddpg:pretrained"], "bootstrap"),
        (["--app", "chain3", "--family", "step", "--fallback", "hpa+vpa@2"], "--fallback: bootstrap.heuristic"),
        (["--app", "chain3", "--family", "step", "--fallback", "vpa@0.5"], "--fallback: bootstrap.heuristic"),
    ],
)
def test_control_cli_errors_are_one_line(capsys, argv, message):
    assert main(["control", *argv]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
