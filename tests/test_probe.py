"""The linear probe on workload embeddings, and its raw-window yardstick."""

from __future__ import annotations

import numpy as np
import pytest

from aware_ray.evaluation.probe import (
    PROBE_FAMILIES,
    RawWindow,
    collect,
    probe_accuracy,
    probe_folds,
    ridge_probe,
)
from envs.observation import N_HISTORY_FEATURES

CFG = {"app": "chain3", "history_window": 8, "max_services": 4}


def test_raw_window_embeds_the_history_the_gru_reads() -> None:
    raw = RawWindow(CFG)
    emb = collect(raw, CFG, "step", seed=0, steps=40, every=8)
    assert emb.shape == (4, 8 * N_HISTORY_FEATURES)
    assert np.isfinite(emb).all() and np.abs(emb).sum() > 0


def test_probe_accuracy_is_a_held_out_rate() -> None:
    folds = probe_folds(RawWindow(CFG), CFG, seeds=3, steps=48)
    # Each fold scores only the held-out seed's episodes: 6 families x 5 windows (t = 8, 16, .., 40).
    held_out = len(PROBE_FAMILIES) * 5
    assert len(folds) == 3
    assert all(abs(f * held_out - round(f * held_out)) < 1e-9 for f in folds), folds
    assert probe_accuracy(RawWindow(CFG), CFG, seeds=3, steps=48) == pytest.approx(np.mean(folds))

    # Constant embeddings carry nothing: the probe then predicts a single family everywhere.
    class Blind(RawWindow):
        def embedding(self, obs: np.ndarray) -> np.ndarray:
            return np.zeros((len(obs), 4))

    assert probe_accuracy(Blind(CFG), CFG, seeds=2, steps=48) == pytest.approx(1 / len(PROBE_FAMILIES))
    with pytest.raises(ValueError, match="probe seeds"):
        probe_folds(Blind(CFG), CFG, seeds=1)


def test_ridge_probe_scores_what_it_did_not_fit() -> None:
    """Separable classes are told apart on held-out points; a probe fitted on swapped labels gets
    every held-out point wrong; so the accuracy is the held-out one, and it can be low."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    y_tr, y_te = np.repeat(np.arange(3), 20), np.repeat(np.arange(3), 10)
    x_tr = centres[y_tr] + rng.normal(0, 0.5, (60, 2))
    x_te = centres[y_te] + rng.normal(0, 0.5, (30, 2))
    assert ridge_probe(x_tr, y_tr, x_te, y_te) == 1.0
    assert ridge_probe(x_tr, (y_tr + 1) % 3, x_te, y_te) == 0.0


@pytest.mark.parametrize("rules", ["", "floor@0.8:mem@1.3:lean@0.1"])
def test_episodes_stepped_side_by_side_embed_as_one_by_one(rules: str, tmp_path) -> None:
    """``collect_many`` runs one forward for every episode's interval; each episode's embeddings are
    still exactly those of the episode run alone, behind the rules the policy trained under."""
    import json
    import shutil

    from aware_ray.evaluation.probe import collect_many
    from policies import registry
    from policies.ddpg.policy import DDPGPolicy

    folder = tmp_path / "policy"
    shutil.copytree(registry.PRETRAINED_DIR, folder)
    meta = json.loads((folder / "policy.json").read_text())
    meta["env"]["rules"] = rules  # as if trained behind them: the policy then acts behind them
    (folder / "policy.json").write_text(json.dumps(meta))
    policy = DDPGPolicy.load(folder)
    cfg = policy.env_overrides()
    episodes = [("step", 3), ("bursty", 4), ("ramp", 5)]
    together = collect_many(policy, cfg, episodes, steps=72, every=8)
    for (family, seed), emb in zip(episodes, together, strict=True):
        alone = collect(policy, cfg, family, seed=seed, steps=72, every=8)
        assert emb.shape == alone.shape and np.array_equal(emb, alone)
