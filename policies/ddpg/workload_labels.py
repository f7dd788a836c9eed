"""The learner connector piece that labels replayed steps with their training workload.

The meta-learner's workload-identification loss needs, per replayed step, which of the
training workloads its episode replays. The env reports it in every ``info``
(``workload_id``: the index in its ``workloads``, -1 for an explicit series); RLlib's episode
replay buffer keeps infos in the steps it samples, so this piece reads them into a
``workload_id`` column next to the observations instead of widening the observation with a
label no deployed policy could be given. Steps without a label get -1 and are left out of the
loss.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from ray.rllib.connectors.connector_v2 import ConnectorV2
from ray.rllib.core.rl_module.rl_module import RLModule
from ray.rllib.utils.annotations import override

WORKLOAD_LABEL = "workload_id"
"""The batch column (and the env's info key) holding the workload index."""


def label_of(info: Any) -> int:
    """The workload index an info dict carries; -1 when it carries none (or a malformed one)."""
    if isinstance(info, dict):
        v = info.get(WORKLOAD_LABEL, -1)
        if isinstance(v, int | np.integer) and not isinstance(v, bool):
            return int(v)
    return -1


class AddWorkloadLabels(ConnectorV2):
    """Adds the ``workload_id`` column (int64, one per replayed step) to the train batch."""

    @override(ConnectorV2)
    def __call__(
        self,
        *,
        rl_module: RLModule,
        batch: dict[str, Any],
        episodes: list[Any],
        explore: bool | None = None,
        shared_data: dict | None = None,
        **kwargs: Any,
    ) -> Any:
        if WORKLOAD_LABEL in batch:
            return batch
        for sa_episode in self.single_agent_episode_iterator(episodes, agents_that_stepped_only=False):
            n = len(sa_episode)
            infos = sa_episode.get_infos(slice(0, n)) if n else []
            self.add_n_batch_items(
                batch,
                WORKLOAD_LABEL,
                items_to_add=np.asarray([label_of(i) for i in infos], dtype=np.int64),
                num_items=n,
                single_agent_episode=sa_episode,
            )
        return batch
