"""DDPG and TD3 on RLlib's new API stack, with a meta-learner RNN for workload adaptation.

Layout as RLlib's own algorithms: ``ddpg.py`` (config and algorithm), ``ddpg_learner.py``,
``torch/ddpg_torch_learner.py`` (the losses), ``default_ddpg_rl_module.py`` and
``torch/ddpg_torch_rl_module.py`` (the model), ``torch/networks.py``, ``noise.py``.
``policy.py`` and ``actor_module.py`` load and run an exported policy with torch alone, so
``DDPG`` and ``DDPGConfig`` are imported lazily: acting never imports ``ray.rllib``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["DDPG", "DDPGConfig"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from policies.ddpg import ddpg

        return getattr(ddpg, name)
    raise AttributeError(f"module 'policies.ddpg' has no attribute {name!r}")
