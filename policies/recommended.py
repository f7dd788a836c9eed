"""The recommended deployment: the spec the endpoint, the controller and the demo default to.

One name for it, so the serving default, the controller's default and the demo's first row cannot
drift apart when the choice changes (it is re-chosen on validation by ``aware-ray rank``; the
figures behind it are in ``policies/pretrained/MODEL_CARD.md``). Kept apart from the registry so a
config module can name it without importing every policy.
"""

RECOMMENDED = "stable@120:floor@0.8:mem@1.3:lean@0.3:ddpg:pretrained"
"""The shipped policy behind ``lean@0.3`` (CPU grows no further than the HPA at 0.3 would let it),
``mem@1.3`` (memory limits from use), ``floor@0.8`` (replicas never below the HPA at 0.8's) and
``stable@120`` (no decrease below the highest ask of the last 120 s); see ``envs.rules``."""
