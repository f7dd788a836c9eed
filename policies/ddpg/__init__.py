"""DDPG and TD3 on RLlib's new API stack, with a meta-learner RNN for workload adaptation.

Layout as RLlib's own algorithms: ``ddpg.py`` (config and algorithm), ``ddpg_learner.py``,
``torch/ddpg_torch_learner.py`` (the losses), ``default_ddpg_rl_module.py`` and
``torch/ddpg_torch_rl_module.py`` (the model), ``torch/networks.py``, ``noise.py``.
"""

from policies.ddpg.ddpg import DDPG, DDPGConfig

__all__ = ["DDPG", "DDPGConfig"]
