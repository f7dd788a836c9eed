"""The README's commands run as written: every ``aware-ray ...`` line in its shell blocks (and in
the docs' command pages) parses with the real argument parser and its ``--help`` form exits 0;
every file they name and every page the README links to exists; the README stays short."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from aware_ray.cli import build_parser, main

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
COMMAND_PAGES = [README, ROOT / "docs" / "cli.md", ROOT / "docs" / "training.md", ROOT / "docs" / "bootstrapping.md"]
PENDING = {"docs/serving.md", "docs/kubernetes.md"}
"""Pages the README points to that are being written with the features they describe."""
REPO_DIRS = ("aware_ray/", "envs/", "policies/", "experiments/", "docs/", "tests/", "cluster/")


def shell_commands(page: Path) -> list[str]:
    """The commands of a page's ```sh blocks: continuation lines joined, comments dropped."""
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", page.read_text(), flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            if line:
                commands.append(line)
    return commands


def aware_ray_commands() -> list[tuple[str, str]]:
    return [
        (page.name, cmd)
        for page in COMMAND_PAGES
        for cmd in shell_commands(page)
        if cmd.startswith("aware-ray ") or " aware-ray " in cmd
    ]


def _argv(cmd: str) -> list[str]:
    words = shlex.split(cmd.split(" > ", 1)[0].rstrip("& "))  # a redirection or `&` is the shell's, not ours
    return words[words.index("aware-ray") + 1 :]


def test_the_readme_has_commands_to_check() -> None:
    subcommands = {_argv(cmd)[0] for page, cmd in aware_ray_commands() if page == "README.md"}
    assert {"evaluate", "train", "rank", "bench", "demo"} <= subcommands


@pytest.mark.parametrize(("page", "cmd"), aware_ray_commands(), ids=lambda x: x[:70] if isinstance(x, str) else x)
def test_each_command_parses_and_its_help_runs(page: str, cmd: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = _argv(cmd)
    build_parser().parse_args(argv)  # a misspelt option or a missing argument exits 2 here
    with pytest.raises(SystemExit) as done:
        main([argv[0], "--help"])
    assert done.value.code == 0
    assert "usage: aware-ray " + argv[0] in capsys.readouterr().out


def _named_files(cmd: str) -> list[str]:
    out = []
    for word in shlex.split(cmd):
        word = word.split("=", 1)[-1].split("#", 1)[0]
        if word.startswith(REPO_DIRS) or re.fullmatch(r"[\w.-]+\.(csv|yaml)", word):
            out.append(word)
    return out


def test_files_named_in_commands_exist() -> None:
    missing = []
    for page in COMMAND_PAGES:
        for cmd in shell_commands(page):
            for name in _named_files(cmd):
                shipped_trace = ROOT / "envs" / "traces" / name
                if not (ROOT / name).exists() and not shipped_trace.exists():
                    missing.append(f"{page.name}: {name}")
    assert not missing, missing


def test_pages_the_readme_links_exist() -> None:
    links = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", README.read_text())
    local = [link for link in links if "://" not in link]
    assert local and not [link for link in local if not (ROOT / link).exists() and link not in PENDING]


def test_the_readme_is_a_guide_not_a_log() -> None:
    assert len(README.read_text().splitlines()) <= 220  # a user's guide of about 200 lines


def test_the_training_page_lists_every_config_key() -> None:
    """docs/training.md and docs/bootstrapping.md name every key a training config accepts."""
    import dataclasses

    from aware_ray.training.config import DDPG_KEYS, RunConfig
    from envs.config import EnvConfig
    from envs.guard import GuardConfig
    from envs.reward import RewardWeights
    from policies.bootstrap.config import BootstrapConfig

    text = (ROOT / "docs" / "training.md").read_text() + (ROOT / "docs" / "bootstrapping.md").read_text()
    keys = [f"ddpg.{k}" for k in DDPG_KEYS]
    for prefix, cls in [
        ("env.", EnvConfig),
        ("env.reward.", RewardWeights),
        ("env.guard.", GuardConfig),
        ("run.", RunConfig),
        ("bootstrap.", BootstrapConfig),
    ]:
        keys += [prefix + f.name for f in dataclasses.fields(cls)]
    assert not [k for k in keys if f"`{k}`" not in text]


def test_the_headline_is_the_measured_held_out_count() -> None:
    """The README's count for the recommended deployment is that of the held-out benchmark shipped
    beside the policy (policies/pretrained/quality.json: money, real time, against the heuristic
    frontier), and that deployment is what the endpoint, controller and demo default to."""
    import json

    from aware_ray.demo import RECOMMENDED
    from aware_ray.release.model_card import _deployed_as
    from aware_ray.serving.runtime import DEFAULT_SPEC
    from policies.registry import PRETRAINED_DIR

    measured = json.loads((PRETRAINED_DIR / "quality.json").read_text())
    rows = [r for app in measured["results"].values() for r in app.values()]
    met = sum(r["goal_met"] and r["memory_met"] for r in rows)
    text = README.read_text()
    assert f"**{met} of {len(rows)}** held-out workloads" in " ".join(text.split())
    # Benchmarked from the training run's folder before the policy was copied in: the same rules in front.
    assert _deployed_as(measured["policy"]) == RECOMMENDED == DEFAULT_SPEC
    # The shipped Serve and controller configs name it too (YAML cannot import the constant).
    serve_cfg = yaml.safe_load((ROOT / "experiments" / "configs" / "serve.yaml").read_text())
    serve_app = serve_cfg["applications"][0]
    assert serve_app["args"]["policy"] == serve_app["deployments"][0]["user_config"]["policy"] == RECOMMENDED
    control_cfg = yaml.safe_load((ROOT / "experiments" / "configs" / "control.yaml").read_text())
    assert control_cfg["control"]["policy"] == RECOMMENDED
    assert f"Deploy **`{RECOMMENDED}`**" in text
