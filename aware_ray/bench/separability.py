"""``aware-ray bench separability``: how far the load itself tells the workload families apart.

The meta-learner's probe goal (a linear read-out of the embedding separating workload
families on held-out workloads) is only reachable if the families can be told apart from what
the embedding sees. This bench measures that on the noiseless request rates of the synthetic
families (no simulator, no policy, no measurement noise: an upper bound for the same inputs),
with two read-outs and two contexts:

- read-outs: the linear probe ``probe.py`` uses on embeddings, and a small MLP trained on the
  same samples (what a learned encoder of the same inputs could reach);
- contexts: the short window the GRU reads (``window`` intervals); that window plus a coarse
  long context (``coarse`` buckets of ``every`` intervals each, before it); and the window plus
  the env's long load context (``envs.load_context`` over the same ``coarse * every`` span:
  shape statistics and the coarse buckets), what the meta-learner reads with
  ``context_span`` set.

Samples are taken every ``sample_every`` intervals of each episode once a full window is in;
training and held-out episodes come from different seeds, as in the probe.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from aware_ray.evaluation.probe import PROBE_FAMILIES, ridge_probe
from envs.load_context import load_context
from envs.synthetic import generate


def load_features(rates: np.ndarray, t: int, window: int, coarse: int, every: int) -> np.ndarray:
    """Features at interval ``t``: the last ``window`` log-rates, then ``coarse`` older bucket means.

    Both parts are relative to the latest log-rate (the level says little about the family; the
    shape does). Before the episode started the rate is taken as its first value (the warm
    start the simulator also assumes). ``coarse = 0`` gives the window alone.
    """
    x = np.log1p(np.asarray(rates, dtype=np.float64))
    last = x[t - 1]
    parts = [x[t - window : t] - last]
    if coarse > 0:
        span = coarse * every
        past = np.concatenate([np.full(span, x[0]), x[:t]])[-span:]
        parts.append(past.reshape(coarse, every).mean(axis=1) - last)
    return np.concatenate(parts)


def env_context_features(rates: np.ndarray, t: int, window: int, span: int, buckets: int) -> np.ndarray:
    """Features at interval ``t``: the window (as ``load_features``) and the env's load context."""
    x = np.log1p(np.asarray(rates, dtype=np.float64))
    return np.concatenate([x[t - window : t] - x[t - 1], load_context(x[:t], span, buckets)])


def family_samples(
    seeds: range,
    steps: int,
    window: int,
    coarse: int,
    every: int,
    sample_every: int,
    interval_s: float,
    env_context: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Features and family labels of episodes of every PROBE_FAMILIES family, one per seed."""
    xs, ys = [], []
    for k, family in enumerate(PROBE_FAMILIES):
        for s in seeds:
            rates = generate(family, steps, interval_s, 300.0, np.random.default_rng(1000 + 17 * s + k))
            for t in range(window, steps, sample_every):
                if env_context:
                    xs.append(env_context_features(rates, t, window, coarse * every, coarse))
                else:
                    xs.append(load_features(rates, t, window, coarse, every))
                ys.append(k)
    return np.asarray(xs, dtype=np.float32), np.asarray(ys)


def mlp_accuracy(
    x_tr: np.ndarray, y_tr: np.ndarray, x_te: np.ndarray, y_te: np.ndarray, hidden: int, epochs: int, seed: int
) -> float:
    """Held-out accuracy of a two-layer MLP trained full-batch with cross-entropy."""
    import torch

    torch.manual_seed(seed)
    mu, sd = x_tr.mean(axis=0), x_tr.std(axis=0) + 1e-6
    a, b = torch.as_tensor((x_tr - mu) / sd), torch.as_tensor((x_te - mu) / sd)
    labels = torch.as_tensor(y_tr)
    n_classes = int(max(y_tr.max(), y_te.max())) + 1
    net = torch.nn.Sequential(
        torch.nn.Linear(a.shape[1], hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(hidden, n_classes),
    )
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    for _ in range(epochs):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(a), labels).backward()
        opt.step()
    with torch.no_grad():
        return float((net(b).argmax(dim=1).numpy() == y_te).mean())


def bench_separability(
    steps: int = 160,
    train_seeds: int = 20,
    test_seeds: int = 6,
    window: int = 32,
    coarse: int = 16,
    every: int = 8,
    sample_every: int = 4,
    interval_s: float = 15.0,
    hidden: int = 128,
    epochs: int = 300,
    seed: int = 0,
) -> dict[str, Any]:
    """Linear-probe and MLP accuracy on held-out episodes, for the short window and with long context."""
    t0 = time.time()
    out: dict[str, Any] = {
        "bench": "separability",
        "families": list(PROBE_FAMILIES),
        "chance": round(1.0 / len(PROBE_FAMILIES), 3),
        "steps": steps,
        "train_seeds": train_seeds,
        "test_seeds": test_seeds,
        "window": window,
        "coarse": coarse,
        "every": every,
        "results": {},
    }
    contexts = {
        f"window_{window}": (0, False),
        f"window_{window}+coarse_{coarse}x{every}": (coarse, False),
        f"window_{window}+load_context_{coarse * every}/{coarse}": (coarse, True),
    }
    for name, (n_coarse, env_context) in contexts.items():
        args = (window, n_coarse, every, sample_every, interval_s, env_context)
        x_tr, y_tr = family_samples(range(train_seeds), steps, *args)
        x_te, y_te = family_samples(range(train_seeds, train_seeds + test_seeds), steps, *args)
        out["results"][name] = {
            "linear_probe": round(ridge_probe(x_tr, y_tr, x_te, y_te), 3),
            "mlp": round(mlp_accuracy(x_tr, y_tr, x_te, y_te, hidden, epochs, seed), 3),
            "samples": [len(y_tr), len(y_te)],
        }
    out["wall_s"] = round(time.time() - t0, 1)
    return out
