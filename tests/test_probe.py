"""The linear probe on workload embeddings, and its raw-window yardstick."""

from __future__ import annotations

import numpy as np

from aware_ray.probe import PROBE_FAMILIES, RawWindow, collect, probe_accuracy
from envs.observation import N_HISTORY_FEATURES

CFG = {"app": "chain3", "history_window": 8, "max_services": 4}


def test_raw_window_embeds_the_history_the_gru_reads() -> None:
    raw = RawWindow(CFG)
    emb = collect(raw, CFG, "step", seed=0, steps=40, every=8)
    assert emb.shape == (4, 8 * N_HISTORY_FEATURES)
    assert np.isfinite(emb).all() and np.abs(emb).sum() > 0


def test_probe_accuracy_is_a_held_out_rate() -> None:
    acc = probe_accuracy(RawWindow(CFG), CFG, train_seeds=1, test_seeds=1)
    assert 0.0 <= acc <= 1.0

    # Constant embeddings carry nothing: the probe then predicts a single family everywhere.
    class Blind(RawWindow):
        def embedding(self, obs: np.ndarray) -> np.ndarray:
            return np.zeros((len(obs), 4))

    assert probe_accuracy(Blind(CFG), CFG, train_seeds=1, test_seeds=1) == 1 / len(PROBE_FAMILIES)
