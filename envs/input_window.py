"""A window on a policy's input: the load it sees, averaged over the last few intervals.

On load that is noisy from one interval to the next (a service called a few times a minute, once
scaled to the app's peak), a learned policy's asks follow the noise, and a scale-down window
(``stable@S``) then holds the highest of them: the deployment pays for chance highs
(docs/results/2026-12-07-noisy-validation.md). Windows on the asks cannot tell a chance high from
the start of a rise. This one acts on the input instead: the policy sees the current interval as it
would be at the window's mean arrival rate, so a single high interval moves its input by a
fraction, and a rise that lasts moves it fully within the window.

What is averaged, and what is not:
- **Load** is averaged as arrival rates, then re-expressed against the settings that run now: per
  service, ``log_rate`` becomes the window's mean rate, and ``cpu_util`` and ``load`` (offered
  utilisation) are scaled by mean rate over current rate, since both are proportional to the
  arrival rate at fixed settings. Averaging the features themselves would mix utilisations
  measured against other replica counts and limits: after a scale-up the policy would keep seeing
  the load that asked for it, and ask again.
- The app's external rate (``log_external``) is averaged the same way, and ``external_trend`` is
  the trend of the averaged rate.
- **Pressure passes as measured**: latency, queue, drops, throttling, end-to-end p99 and drops.
  A service in trouble now is in trouble whatever its mean load says.
- **Settings** (replicas, ready, limits, last action) are the current ones: actions are steps from
  what runs now, so the policy must see what runs now.
- The history window and the long load context (the meta-learner's input) are left as they are:
  they already show the noise as noise.

Pure maths over observation rows; the stateful part (the last few rows) lives with the policy
wrapper (``policies.smoothed_input``).
"""

from __future__ import annotations

import numpy as np

from envs.observation import A, F, ObservationLayout

RATE_SCALE = 10.0
"""``log_rate`` and ``log_external`` are ``log1p(rate) / RATE_SCALE`` (``envs.observation``)."""
LOAD_CLIP = 4.0
"""``load`` is clipped to [0, LOAD_CLIP] in the observation."""


def _rate(encoded: np.ndarray) -> np.ndarray:
    return np.expm1(np.asarray(encoded, dtype=np.float64) * RATE_SCALE)


def _encode_rate(rate: np.ndarray) -> np.ndarray:
    return np.log1p(np.maximum(rate, 0.0)) / RATE_SCALE


def smoothed_observation(rows: np.ndarray, layout: ObservationLayout, n_services: int, window: int) -> np.ndarray:
    """The newest of `rows` (observations, oldest first) with its load averaged over the last
    `window` rows, as the module docstring says; `rows` may hold one row more, from which the
    averaged rate's trend is read. With a single row (or `window` 1) the newest row comes back
    unchanged. Services with no arrivals now keep their utilisation features: there is no rate to
    scale them from, and an idle service is not what this window is for.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if rows.ndim != 2 or len(rows) == 0:
        raise ValueError("smoothed_observation: rows must be a non-empty (n, observation size) array")
    now = rows[-1]
    out = now.copy()
    if window <= 1 or len(rows) == 1:
        return out.astype(np.float32)
    recent = rows[-window:]

    services = layout.services(recent)[:, :n_services]  # (k, n, features)
    rates = _rate(services[:, :, F["log_rate"]])
    mean_rate, now_rate = rates.mean(axis=0), rates[-1]
    scale = np.divide(mean_rate, now_rate, out=np.ones_like(now_rate), where=now_rate > 0)
    svc = layout.services(out)  # a view into ``out``
    svc[:n_services, F["log_rate"]] = np.where(now_rate > 0, _encode_rate(mean_rate), svc[:n_services, F["log_rate"]])
    svc[:n_services, F["cpu_util"]] = np.clip(svc[:n_services, F["cpu_util"]] * scale, 0.0, 1.0)
    svc[:n_services, F["load"]] = np.clip(svc[:n_services, F["load"]] * scale, 0.0, LOAD_CLIP)

    external = _rate(layout.app(rows)[:, A["log_external"]])
    app = layout.app(out)
    app[A["log_external"]] = _encode_rate(external[-window:].mean())
    if len(external) > window:
        before = external[-window - 1 : -1].mean()
        if before > 0:
            app[A["external_trend"]] = np.clip(external[-window:].mean() / before - 1.0, -1.0, 1.0)
    return out.astype(np.float32)
