"""The world the agent acts in: workloads, the simulator, the gymnasium env, decoding and guard.

Importing this package registers ``aware_ray/Autoscale-v0`` with gymnasium. It depends on
numpy, gymnasium and PyYAML only, so it can be tested and benchmarked without Ray.
"""

import gymnasium

ENV_ID = "aware_ray/Autoscale-v0"

if ENV_ID not in gymnasium.registry:
    gymnasium.register(id=ENV_ID, entry_point="envs.autoscale_env:AutoscaleEnv")
