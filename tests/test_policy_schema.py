"""Exported policies: RLlib-free loading, the observation schema check, and golden actions."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from envs.errors import ConfigError
from policies.ddpg.policy import DDPGPolicy, migrate
from policies.registry import PRETRAINED_DIR

GOLDEN = Path(__file__).parent / "data" / "pretrained_golden.npz"


def make_golden() -> None:
    """Regenerate the golden file (only when the shipped policy is retrained on purpose)."""
    from envs.autoscale_env import AutoscaleEnv

    policy = DDPGPolicy.load(PRETRAINED_DIR)
    env = AutoscaleEnv({**policy.env_config, "workloads": ["family:bursty"], "episode_steps": 64})
    obs_list = []
    for seed in (0, 1):
        obs, _ = env.reset(seed=seed)
        for _ in range(32):
            obs_list.append(obs)
            obs, *_ = env.step(policy.act(obs, None)[0])
    observations = np.stack(obs_list).astype(np.float32)
    np.savez_compressed(
        GOLDEN,
        observations=observations,
        actions=policy.act_batch(observations),
        embeddings=policy.embedding(observations),
    )


def test_loading_and_acting_do_not_import_rllib():
    code = (
        "import sys, numpy as np\n"
        "from policies.ddpg.policy import DDPGPolicy\n"
        "from policies.registry import PRETRAINED_DIR\n"
        "p = DDPGPolicy.load(PRETRAINED_DIR)\n"
        "p.act(np.zeros(p.module.observation_space.shape, np.float32), None)\n"
        "bad = sorted(m for m in sys.modules if m == 'ray.rllib' or m.startswith('ray.rllib.'))\n"
        "print(len(bad), bad[:3])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.startswith("0 "), out.stdout


def test_golden_actions():
    data = np.load(GOLDEN)
    policy = DDPGPolicy.load(PRETRAINED_DIR)
    np.testing.assert_allclose(policy.act_batch(data["observations"]), data["actions"], atol=1e-5, rtol=0)
    np.testing.assert_allclose(policy.embedding(data["observations"]), data["embeddings"], atol=1e-5, rtol=0)
    one, _ = policy.act(data["observations"][5], None)
    np.testing.assert_allclose(one, data["actions"][5], atol=1e-5, rtol=0)


def test_batched_rows_equal_single_rows_bit_for_bit():
    obs = np.load(GOLDEN)["observations"][:40]
    policy = DDPGPolicy.load(PRETRAINED_DIR)
    single = np.stack([policy.act(o, None)[0] for o in obs])
    for m in (1, 2, 3, 5, 7, 8, 9, 13, 16, 17, 31, 40):
        for start in range(0, len(obs) - m + 1, 17):
            assert policy.act_batch(obs[start : start + m]).tobytes() == single[start : start + m].tobytes(), m


def test_pretrained_carries_schema_and_rules():
    meta = json.loads((PRETRAINED_DIR / "policy.json").read_text())
    assert meta["format"] == 2
    schema = meta["observation_schema"]
    assert [f["name"] for f in schema["blocks"]["service"]][:3] == ["cpu_util", "mem_util", "replicas"]
    assert len(schema["blocks"]["context"]) == meta["model_config"]["layout"]["n_context"]
    assert schema["layout"]["size"] == meta["observation_space"]["shape"][0]
    assert meta["rules"] == meta["env"]["rules"]


def _copy(tmp_path: Path) -> Path:
    dst = tmp_path / "p"
    shutil.copytree(PRETRAINED_DIR, dst)
    return dst


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s["blocks"]["service"][7].update(name="offered"), "service feature 7: policy has 'offered'"),
        (lambda s: s["blocks"]["app"][2].update(scaling="log(rps)"), "app feature 2: policy has 'log_external'"),
        (lambda s: s["blocks"]["history"].pop(), "history feature 12: policy has nothing"),
        (lambda s: s["layout"].update(size=1), "layout.size: policy has 1"),
        (lambda s: s.update(version=0), "schema version"),
    ],
)
def test_schema_difference_is_a_one_line_error(tmp_path, edit, message):
    folder = _copy(tmp_path)
    meta = json.loads((folder / "policy.json").read_text())
    edit(meta["observation_schema"])
    (folder / "policy.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError) as err:
        DDPGPolicy.load(folder)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_format_1_is_refused_then_migrated(tmp_path):
    folder = _copy(tmp_path)
    meta = json.loads((folder / "policy.json").read_text())
    old = {k: v for k, v in meta.items() if k not in ("observation_schema", "rules")}
    old["format"] = 1
    (folder / "policy.json").write_text(json.dumps(old))
    with pytest.raises(ConfigError, match="migrate"):
        DDPGPolicy.load(folder)
    migrate(folder)
    assert json.loads((folder / "policy.json").read_text()) == meta


def test_actor_module_matches_rllib_module():
    """The torch-only module and RLlib's inference module act the same on the same weights."""
    from policies.ddpg.torch.ddpg_torch_rl_module import DDPGTorchRLModule

    policy = DDPGPolicy.load(PRETRAINED_DIR)
    rl = DDPGTorchRLModule(
        observation_space=policy.module.observation_space,
        action_space=policy.module.action_space,
        inference_only=True,
        model_config=policy.meta["model_config"],
    )
    rl.load_state_dict(torch.load(PRETRAINED_DIR / "policy.pt", weights_only=True), strict=False)
    obs = torch.as_tensor(np.load(GOLDEN)["observations"])
    with torch.no_grad():
        assert torch.equal(rl.act(obs), policy.module.act(obs))
        assert torch.equal(rl.embedding(obs), policy.module.embedding(obs))


if __name__ == "__main__":
    make_golden()


def test_one_pass_gives_the_actions_and_embeddings_of_two() -> None:
    """Serving asks for both in one forward; they must equal what act_batch and embedding give."""
    from aware_ray.serving.runtime import DEFAULT_APPS, DEFAULT_SPEC, PolicyRuntime

    runtime = PolicyRuntime(DEFAULT_SPEC, DEFAULT_APPS, {})
    learned = runtime.learned
    assert learned is not None and learned.has_embedding
    obs = np.random.default_rng(3).uniform(-1, 1, (5, runtime.observation_size)).astype(np.float32)
    act, emb = learned.act_and_embed(obs)
    np.testing.assert_array_equal(act, learned.act_batch(obs))
    np.testing.assert_array_equal(emb, learned.embedding(obs))
