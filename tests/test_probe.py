"""The linear probe on workload embeddings, and its raw-window yardstick."""

from __future__ import annotations

import numpy as np
import pytest

from aware_ray.evaluation.probe import PROBE_FAMILIES, RawWindow, collect, probe_accuracy, probe_folds
from envs.observation import N_HISTORY_FEATURES

CFG = {"app": "chain3", "history_window": 8, "max_services": 4}


def test_raw_window_embeds_the_history_the_gru_reads() -> None:
    raw = RawWindow(CFG)
    emb = collect(raw, CFG, "step", seed=0, steps=40, every=8)
    assert emb.shape == (4, 8 * N_HISTORY_FEATURES)
    assert np.isfinite(emb).all() and np.abs(emb).sum() > 0


def test_probe_accuracy_is_a_held_out_rate() -> None:
    folds = probe_folds(RawWindow(CFG), CFG, seeds=3, steps=48)
    assert len(folds) == 3 and all(0.0 <= f <= 1.0 for f in folds)
    assert probe_accuracy(RawWindow(CFG), CFG, seeds=3, steps=48) == pytest.approx(np.mean(folds))

    # Constant embeddings carry nothing: the probe then predicts a single family everywhere.
    class Blind(RawWindow):
        def embedding(self, obs: np.ndarray) -> np.ndarray:
            return np.zeros((len(obs), 4))

    assert probe_accuracy(Blind(CFG), CFG, seeds=2, steps=48) == pytest.approx(1 / len(PROBE_FAMILIES))
    with pytest.raises(ValueError, match="probe seeds"):
        probe_folds(Blind(CFG), CFG, seeds=1)
