"""The value rules of DDPG's options, checked in one place.

``DDPGConfig.validate`` runs them on the config's attributes and the training-config reader
(``aware_ray.training.config.parse_ddpg``) on a YAML ``ddpg:`` section before any config is
built, so a rule is written once and both say the same thing about a bad value. Cross-option
rules that need the env or the layout stay in ``DDPGConfig.validate``.
"""

from __future__ import annotations

from typing import Any

from policies.ddpg.noise import ExplorationNoise

UNIT_INTERVAL = ("actor_lr", "critic_lr", "tau", "gamma")
"""Numbers in (0, 1]."""
POSITIVE_INTS = ("policy_delay", "train_batch_size_per_learner", "embedding_dim", "meta_hidden", "workload_code_dim")
"""Integers >= 1."""
NON_NEGATIVE_INTS = (
    *("synthetic_contexts", "context_renewal", "num_steps_sampled_before_learning_starts"),
    "num_steps_sampled_before_actor_learns",
)
"""Integers >= 0."""
NON_NEGATIVE = (
    *("target_noise", "target_noise_clip", "aux_loss_weight", "workload_loss_weight", "saturation_penalty"),
    "bc_weight",
)
"""Numbers >= 0."""
HIDDENS = ("actor_hiddens", "critic_hiddens")
BOOLS = ("train_meta",)
"""True or false."""


def _number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _integer(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_options(options: dict[str, Any]) -> None:
    """Raise ValueError("KEY: must ..., got VALUE") for the first option that breaks its rule.

    Only the keys present are checked. Learning rates given as RLlib schedules (lists) are
    left to RLlib.
    """
    for key in UNIT_INTERVAL:
        if key in options and _number(options[key]) and not 0 < options[key] <= 1:
            raise ValueError(f"{key}: must be in (0, 1], got {options[key]!r}")
    for key in POSITIVE_INTS:
        if key in options and not (_integer(options[key]) and options[key] >= 1):
            raise ValueError(f"{key}: must be an integer >= 1, got {options[key]!r}")
    if "n_step" in options:
        n = options["n_step"]
        pair = isinstance(n, list | tuple) and len(n) == 2 and all(_integer(x) and x >= 1 for x in n)
        if not ((_integer(n) and n >= 1) or pair):
            raise ValueError(f"n_step: must be an integer >= 1 (or RLlib's [low, high] range), got {n!r}")
    for key in NON_NEGATIVE_INTS:
        if key in options and not (_integer(options[key]) and options[key] >= 0):
            raise ValueError(f"{key}: must be an integer >= 0, got {options[key]!r}")
    for key in NON_NEGATIVE:
        if key in options and not (_number(options[key]) and options[key] >= 0):
            raise ValueError(f"{key}: must be a number >= 0, got {options[key]!r}")
    ti = options.get("training_intensity")
    if ti is not None and not (_number(ti) and ti > 0):
        raise ValueError(f"training_intensity: must be a number > 0, got {ti!r}")
    for key in BOOLS:
        if key in options and not isinstance(options[key], bool):
            raise ValueError(f"{key}: must be true or false, got {options[key]!r}")
    for key in HIDDENS:
        if key in options:
            sizes = options[key]
            if not (isinstance(sizes, list | tuple) and sizes and all(_integer(h) and h > 0 for h in sizes)):
                raise ValueError(f"{key}: must be a non-empty list of positive integers, got {sizes!r}")
    if "exploration" in options:
        expl = options["exploration"]
        if not isinstance(expl, dict):
            raise ValueError(f"exploration: must be a mapping, got {expl!r}")
        known = set(ExplorationNoise.__dataclass_fields__)
        for key in expl:
            if key not in known:
                raise ValueError(f"exploration.{key}: unknown key (known: {', '.join(sorted(known))})")
        for key in ("sigma", "final_sigma", "decay_steps", "ou_theta"):
            if key in expl and not (_number(expl[key]) and expl[key] >= 0):
                raise ValueError(f"exploration.{key}: must be a number >= 0, got {expl[key]!r}")
        ExplorationNoise.from_config(expl)
