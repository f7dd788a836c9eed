"""Tests for policies.oracle: the clairvoyant plan run through the env on known rate series.

Runs use measurement noise 0 and explicit rates (no arrival noise), so a violation is the plan's
own fault. The static baseline is worked out by hand: per service, replicas at the app's initial
CPU limit enough to keep the peak at 70 % utilisation,
``ceil(peak x visits x cpu_ms / 1000 / (0.7 x limit))``, held for the whole episode.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.app import load_app
from envs.autoscale_env import AutoscaleEnv
from envs.guard import GuardConfig
from envs.observation import ObservationLayout
from policies.base import EnvContext
from policies.oracle import AllocationSearch, OraclePolicy

HOURS = 15.0 / 3600.0
T = 24
STEP_AT = 12


def constant(rps: float) -> np.ndarray:
    return np.full(T, rps)


def step(low: float, high: float) -> np.ndarray:
    return np.r_[np.full(STEP_AT, low), np.full(T - STEP_AT, high)]


def run_oracle(app: str, rates: np.ndarray) -> tuple[AutoscaleEnv, OraclePolicy, list, np.ndarray]:
    """Play the oracle through the env; returns the scoreboards and the ready replicas per interval."""
    env = AutoscaleEnv({"app": app, "noise": 0.0, "arrival_noise": False})
    obs, _ = env.reset(seed=0, options={"rates": rates})
    policy = OraclePolicy(EnvContext.of(env), env.rates)
    state = policy.initial_state()
    boards, ready = [], []
    for _ in range(len(rates)):
        action, state = policy.act(obs, state)
        obs, _, _, _, info = env.step(action)
        boards.append(info["scoreboard"])
        ready.append(env.backend.truth.ready_avg[0].copy())
    return env, policy, boards, np.array(ready)


# (app, rates, hand-computed static cores for the peak)
# single, 20 ms per request, initial limit 1 core:
#   60 rps: 1.2 cores / 0.7 -> 2 replicas = 2.0 cores; 300 rps: 6 / 0.7 -> 9 = 9.0; 200 rps: 4 / 0.7 -> 6 = 6.0.
# chain3, 4 / 12 / 6 ms, initial limits 0.5 / 1.0 / 0.5 cores:
#   80 rps: 0.32 / 0.35 -> 1 x 0.5, 0.96 / 0.7 -> 2 x 1.0, 0.48 / 0.35 -> 2 x 0.5: 3.5 cores;
#   200 rps: 0.8 / 0.35 -> 3 x 0.5, 2.4 / 0.7 -> 4 x 1.0, 1.2 / 0.35 -> 4 x 0.5: 7.5 cores.
CASES = [
    pytest.param("single", constant(60.0), 2.0, id="single-constant-60"),
    pytest.param("chain3", constant(80.0), 3.5, id="chain3-constant-80"),
    pytest.param("single", step(40.0, 300.0), 9.0, id="single-step-40-300"),
    pytest.param("chain3", step(40.0, 200.0), 7.5, id="chain3-step-40-200"),
    pytest.param("single", constant(200.0), 6.0, id="single-constant-200"),
    pytest.param("chain3", constant(200.0), 7.5, id="chain3-constant-200"),
]


@pytest.mark.parametrize(("app", "rates", "static_cores"), CASES)
def test_oracle_meets_slo_below_static_cost(app: str, rates: np.ndarray, static_cores: float) -> None:
    _, _, boards, _ = run_oracle(app, rates)
    assert [i for i, b in enumerate(boards) if b.violated] == []
    assert sum(b.dropped for b in boards) < 1.0
    core_hours = sum(b.cpu_core_hours for b in boards)
    assert core_hours < static_cores * len(rates) * HOURS


# (app, rates, start-up delay in intervals per service: ceil(startup_s / 15))
RISES = [
    pytest.param("single", step(40.0, 800.0), [2], id="single-40-800"),  # 30 s
    pytest.param("chain3", step(50.0, 1200.0), [1, 2, 3], id="chain3-50-1200"),  # 15 / 30 / 45 s
]


@pytest.mark.parametrize(("app", "rates", "lead"), RISES)
def test_replicas_are_requested_early_enough(app: str, rates: np.ndarray, lead: list[int]) -> None:
    env, policy, boards, ready = run_oracle(app, rates)
    replicas = policy.plan.replicas
    for s, d in enumerate(lead):
        need = replicas[STEP_AT, s]
        # The step needs more replicas for every service, so each one has to rise ...
        assert replicas[0, s] < need, env.app.services[s].name
        # ... at least `d` intervals before the step ...
        first = int(np.flatnonzero(replicas[:, s] >= need)[0])
        assert first <= STEP_AT - d, (env.app.services[s].name, first)
        # ... so they are ready through the whole interval of the step.
        assert ready[STEP_AT, s] >= need
    assert [i for i, b in enumerate(boards) if b.violated] == []


@pytest.mark.parametrize(("app", "rates", "lead"), RISES)
def test_plan_steps_are_within_the_guard(app: str, rates: np.ndarray, lead: list[int]) -> None:
    del lead
    env = AutoscaleEnv({"app": app})
    plan = OraclePolicy(EnvContext.of(env), rates).plan
    r = plan.replicas.astype(float)
    # Default guard: up by max(4 pods, 100 %) per interval; limits at most x2 up.
    assert np.all(np.diff(r, axis=0) <= np.maximum(4.0, r[:-1]))
    assert np.all(plan.cpu_limit[1:] <= 2.0 * plan.cpu_limit[:-1] + 1e-9)
    assert np.all(plan.cpu_limit * 1000 == np.round(plan.cpu_limit * 1000))
    assert np.all(plan.mem_limit == np.round(plan.mem_limit))


def test_plan_ramps_no_earlier_than_the_guard_needs() -> None:
    # single, 40 -> 800 rps at step 12, 30 s start-up (2 intervals): 5 replicas are needed from step 12,
    # so requesting them at step 10 is enough, and 1 -> 5 is within the guard's 4-pod step.
    env = AutoscaleEnv({"app": "single"})
    plan = OraclePolicy(EnvContext.of(env), step(40.0, 800.0)).plan
    assert plan.replicas[STEP_AT, 0] == 5
    np.testing.assert_array_equal(plan.replicas[8:13, 0], [1, 1, 5, 5, 5])


# --- the allocation search -----------------------------------------------------------------------


def search_for(app: str) -> AllocationSearch:
    a = load_app(app)
    return AllocationSearch(EnvContext(a, ObservationLayout(16), GuardConfig(), 15.0))


@pytest.mark.parametrize(
    ("app", "cores", "replicas", "limit"),
    [
        ("single", [0.05], [1], [0.1]),  # below the smallest limit
        ("single", [3.0], [1], [3.0]),
        ("single", [4.0], [1], [4.0]),
        ("single", [10.0], [3], [10.0 / 3.0]),  # ceil(10 / 4) replicas
        ("single", [200.0], [40], [4.0]),  # max replicas, then max limit
        ("chain3", [0.5, 4.5, 12.0], [1, 2, 3], [0.5, 2.25, 4.0]),
    ],
)
def test_split_uses_fewest_replicas(app: str, cores: list[float], replicas: list[int], limit: list[float]) -> None:
    r, lim = search_for(app).split(np.array(cores))
    np.testing.assert_array_equal(r, replicas)
    np.testing.assert_allclose(lim, limit, rtol=1e-12)


def cores_table(app: str) -> tuple[np.ndarray, np.ndarray]:
    search = search_for(app)
    peak = search.app.default_peak_rps
    rates = np.arange(5.0, peak + 1.0, 5.0)
    return rates, np.stack([search.cores(float(x)) for x in rates])


NON_MONOTONE_TOTAL = pytest.mark.xfail(
    strict=True,
    reason="AllocationSearch.cores (grid + greedy per-service cut) is not monotone: social-network's total "
    "falls from 3.31 to 3.09 cores between 60 and 65 rps",
)
NON_MONOTONE_SERVICE = pytest.mark.xfail(
    strict=True,
    reason="AllocationSearch.cores is not monotone per service: chain3's frontend gets 0.495 cores at 20 rps "
    "and 0.4 at 25 rps; social-network services fall as well",
)


@pytest.mark.parametrize("app", ["single", "chain3", pytest.param("social-network", marks=NON_MONOTONE_TOTAL)])
def test_cores_total_monotone_in_rate(app: str) -> None:
    rates, cores = cores_table(app)
    total = cores.sum(axis=1)
    drops = [(rates[i], rates[i + 1]) for i in np.flatnonzero(np.diff(total) < -1e-9)]
    assert drops == []
    assert total[-1] > total[0]


@pytest.mark.parametrize(
    "app",
    [
        "single",
        pytest.param("chain3", marks=NON_MONOTONE_SERVICE),
        pytest.param("social-network", marks=NON_MONOTONE_SERVICE),
    ],
)
def test_cores_per_service_monotone_in_rate(app: str) -> None:
    rates, cores = cores_table(app)
    drops = [(rates[i], rates[i + 1], s) for i, s in np.argwhere(np.diff(cores, axis=0) < -1e-9)]
    assert drops == []


@pytest.mark.parametrize(
    ("app", "rps", "work"),
    [
        ("single", 100.0, [2.0]),  # 100 x 20 ms
        ("single", 400.0, [8.0]),
        ("chain3", 100.0, [0.4, 1.2, 0.6]),  # 100 x 4 / 12 / 6 ms
        ("chain3", 250.0, [1.0, 3.0, 1.5]),
    ],
)
def test_cores_cover_the_work(app: str, rps: float, work: list[float]) -> None:
    # Every service gets more cores than the work it is sent, so none saturates.
    cores = search_for(app).cores(rps)
    assert np.all(cores > np.array(work))
