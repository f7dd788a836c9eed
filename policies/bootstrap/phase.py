"""The phases of the bootstrapping lifecycle."""

from __future__ import annotations

from enum import IntEnum

from envs.errors import ConfigError


class Phase(IntEnum):
    """Who controls the app and whether the policy learns (the int is what TensorBoard plots)."""

    INITIALIZED = 0
    """Nothing has run yet."""
    OFFLINE = 1
    """The heuristic acts; its transitions fill the replay buffer; the actor clones it."""
    ONLINE = 2
    """The policy acts through the guard and learns; a monitor hands control back when it does worse."""
    SERVING = 3
    """The policy acts and is frozen; drift sends the lifecycle back to ONLINE (retraining)."""

    @staticmethod
    def parse(name: str, where: str) -> Phase:
        """The phase called `name` (case-insensitive); a one-line error naming `where` otherwise."""
        if isinstance(name, str) and name.strip().upper() in Phase.__members__:
            return Phase[name.strip().upper()]
        known = ", ".join(p.name.lower() for p in Phase)
        raise ConfigError(f"{where}: unknown phase {name!r} (known: {known})")

    @property
    def heuristic_in_control(self) -> bool:
        return self in (Phase.INITIALIZED, Phase.OFFLINE)

    @property
    def learning(self) -> bool:
        """Whether the learner updates the policy in this phase."""
        return self in (Phase.OFFLINE, Phase.ONLINE)
