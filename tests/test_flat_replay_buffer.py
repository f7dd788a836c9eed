"""FlatReplayBuffer: n-step transitions at insertion, across chunks, ring, checkpoint/restore."""

from __future__ import annotations

import numpy as np
import pytest
from ray.rllib.core.columns import Columns
from ray.rllib.env.single_agent_episode import SingleAgentEpisode

from policies.ddpg.flat_replay_buffer import N_STEP, FlatReplayBuffer
from policies.ddpg.workload_labels import WORKLOAD_LABEL


def _episode(rewards: list[float], start: int = 0, terminated: bool = False, truncated: bool = False, eid="e"):
    """An episode chunk whose observation t is [start + t] and action t is [10 * (start + t)]."""
    ep = SingleAgentEpisode(id_=eid)
    ep.add_env_reset(observation=np.array([start], np.float32), infos={"workload_id": start})
    for i, r in enumerate(rewards):
        last = i == len(rewards) - 1
        ep.add_env_step(
            observation=np.array([start + i + 1], np.float32),
            action=np.array([10.0 * (start + i)], np.float32),
            reward=r,
            infos={"workload_id": start + i + 1},
            terminated=terminated and last,
            truncated=truncated and last,
        )
    ep.to_numpy()
    return ep


def _rows(buf: FlatReplayBuffer) -> dict[int, dict]:
    """Stored transitions keyed by their observation (the time step)."""
    a = buf.arrays
    return {
        int(a["obs"][i, 0]): {
            "R": float(a["returns"][i]),
            "next": int(a["next_obs"][i, 0]),
            "n": int(a["n_steps"][i]),
            "term": bool(a["terminated"][i]),
            "act": float(a["actions"][i, 0]),
            "label": int(a["labels"][i]),
        }
        for i in range(len(buf))
    }


def test_one_step_transitions() -> None:
    buf = FlatReplayBuffer(100, n_step=1, gamma=0.9)
    buf.add([_episode([1.0, 2.0, 3.0], terminated=True)])
    rows = _rows(buf)
    assert len(buf) == 3
    assert rows[0] == {"R": 1.0, "next": 1, "n": 1, "term": False, "act": 0.0, "label": 0}
    assert rows[2] == {"R": 3.0, "next": 3, "n": 1, "term": True, "act": 20.0, "label": 2}


def test_n_step_returns_by_hand_across_chunks() -> None:
    g = 0.5
    buf = FlatReplayBuffer(100, n_step=3, gamma=g)
    buf.add([_episode([1.0, 2.0, 4.0, 8.0], start=0)])  # unfinished: steps 2, 3 wait
    assert sorted(_rows(buf)) == [0, 1]
    buf.add([_episode([16.0, 32.0], start=4, terminated=True)])  # its successor ends the episode
    rows = _rows(buf)
    assert sorted(rows) == [0, 1, 2, 3, 4, 5]
    assert rows[0]["R"] == pytest.approx(1 + g * 2 + g * g * 4) and rows[0]["next"] == 3 and rows[0]["n"] == 3
    assert rows[3]["R"] == pytest.approx(8 + g * 16 + g * g * 32) and rows[3]["next"] == 6
    assert rows[3]["term"] and rows[3]["n"] == 3
    # The last steps of a finished episode cover what is left of it.
    assert rows[4] == {"R": pytest.approx(16 + g * 32), "next": 6, "n": 2, "term": True, "act": 40.0, "label": 4}
    assert rows[5]["n"] == 1 and rows[5]["term"]
    assert not rows[1]["term"] and buf.carry == {}


def test_truncated_episode_bootstraps() -> None:
    buf = FlatReplayBuffer(100, n_step=2, gamma=1.0)
    buf.add([_episode([1.0, 1.0, 1.0], truncated=True)])
    rows = _rows(buf)
    assert rows[2] == {"R": 1.0, "next": 3, "n": 1, "term": False, "act": 20.0, "label": 2}
    assert not any(r["term"] for r in rows.values())


def test_sample_columns_and_ring() -> None:
    buf = FlatReplayBuffer(5, n_step=1, gamma=0.9, seed=0)
    buf.add([_episode([0.0] * 8, truncated=True)])
    assert len(buf) == 5 and buf.added == 8
    assert sorted(_rows(buf)) == [3, 4, 5, 6, 7]  # the newest five
    batch = buf.sample(num_items=64)
    assert batch[Columns.OBS].shape == (64, 1) and batch[Columns.OBS].dtype == np.float32
    assert set(batch) >= {Columns.NEXT_OBS, Columns.ACTIONS, Columns.REWARDS, Columns.TERMINATEDS, N_STEP}
    assert set(np.unique(batch[Columns.OBS][:, 0]).astype(int)) <= {3, 4, 5, 6, 7}
    np.testing.assert_array_equal(batch[WORKLOAD_LABEL], batch[Columns.OBS][:, 0].astype(int))
    with pytest.raises(ValueError, match="empty"):
        FlatReplayBuffer(5).sample(num_items=1)


def test_state_round_trip() -> None:
    buf = FlatReplayBuffer(50, n_step=2, gamma=0.9, seed=1)
    buf.add([_episode([1.0, 2.0, 3.0], eid="a"), _episode([5.0, 6.0], start=100, eid="b", terminated=True)])
    state = buf.get_state()
    copy = FlatReplayBuffer(50, n_step=2, gamma=0.9, seed=99)
    copy.set_state(state)
    assert len(copy) == len(buf) and _rows(copy) == _rows(buf)
    ours, theirs = buf.sample(num_items=16), copy.sample(num_items=16)
    for name, column in ours.items():
        np.testing.assert_array_equal(theirs[name], column)
    # The waiting tail of episode "a" survives too.
    buf.add([_episode([4.0], start=3, eid="a", truncated=True)])
    copy.add([_episode([4.0], start=3, eid="a", truncated=True)])
    assert _rows(copy) == _rows(buf)
    with pytest.raises(ValueError, match="n_step 2 does not match"):
        FlatReplayBuffer(50, n_step=3).set_state(state)


@pytest.mark.parametrize(("kwargs", "message"), [({"capacity": 0}, "capacity"), ({"n_step": (1, 3)}, "n_step")])
def test_bad_settings_name_the_key(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        FlatReplayBuffer(**kwargs)
