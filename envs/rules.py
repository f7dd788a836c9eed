"""Controller rules in front of a policy's decisions, and their grammar (``kind@X``).

``stable@S``, the HPA's scale-down stabilization window. The HPA never scales down to a single
low recommendation: it takes the highest recommendation of the last
``behavior.scaleDown.stabilizationWindowSeconds`` (300 s by default), while scale-up follows at
once. A learned policy that cuts CPU the interval load drops pays for it on load that alternates
faster than it can react (every rise lands on a cut-down limit). The rule applies the same window
to each of the three outputs (replicas, CPU limit, memory limit) over the last S seconds:
increases pass, a decrease goes no lower than the highest of the policy's own asks in the window,
and never above the current setting. A learned policy asks in steps from the current setting,
which the window itself holds up, so a policy that keeps asking to halve comes down one such step
per window (the HPA's recommendations are absolute counts and fall at once). That slower descent
is part of the rule as measured: comparing asks as ratios to the setting they were made from
instead was tried, and on held load it let the policy's small upward asks block every cut and
cost more.

``steady@S``, ``stable@S`` for load that is noisy from one interval to the next. On such load a
learned policy's asks are noisy too, and the highest single ask of a window is mostly the noise:
``stable@120`` then held the CPU a chance high had asked for (on validation load with
interval-to-interval noise, money above the heuristic frontier's at equal violations:
docs/results/2026-12-07-noisy-validation.md). This rule holds the highest ask the policy made in
``STEADY_RUN`` consecutive intervals of the window: an ask made once passes as asked for that
interval but is not held, one made twice running (a rise, a burst of more than one interval) is
held as ``stable@S`` holds it. In place of ``stable@120`` in the recommended chain it met the goal
on more validation workloads over three seeds (13 of 14) but on fewer over six (12 against 13: it
gave back NASA July's slow rises and ``step+jitter``), so the chain keeps ``stable@120``.

``lean@U``, growth no further than the HPA at target U would allow. The HPA cannot add pods to a
service whose utilisation is below its target: ``ceil(replicas x utilisation / target)`` never
exceeds the current count there. A learned policy has no such floor under its reasoning. Where
its observations leave what it saw in training (a service with no requests for hours), it can
double a CPU limit or add pods with nothing to serve, then cut them again, interval after
interval. The rule lets a service's CPU capacity (replicas x CPU limit) grow only to where it
would run at utilisation U, utilisation counted over every desired pod as the HPA counts a pod
that is not ready yet. A service that is throttled, drops requests or queues may grow as asked;
so may a CPU limit below one core, up to one core, while the app's end-to-end p99 is past its SLO
(such a limit slows every request, however idle the pod). Decreases and memory pass as asked.

``mem@H``, memory limits sized from use, as the VPA sizes them. Nothing in a learned policy's
reward pulls its memory asks down as hard as money does, and a charge on memory in the reward cost
the CPU side more than it saved; trained without a floor under its memory, a policy drifted to the
top of each service's range (4.9 to 7.2 times the GiB-hours of an HPA with an in-place VPA, at real
time, in money). ``vpa-mem:`` fixed the memory at deployment but lost a held-out workload: the
policy had never seen the limits it then ran with. This rule sets each service's memory limit to H
times the highest per-replica use of the last ``MEM_WINDOW_S`` (the VPA's percentile of per-window
peaks plus its safety margin, reduced to what one observation row holds), raised at once when use
passes it and lowered only when the limit is more than ``MEM_BAND`` above it (the VPA updater
changes a limit only outside its recommendation's bounds, so memory is not resized every
interval). It replaces the policy's memory ask; the replicas and CPU asks pass. Being a pure
function of the observation rows with a window's memory, the env applies it in training and a
controller behind it at deployment, so a policy meets the same limits in both.

``floor@T``, never below the HPA at target T. ``lean@U`` bounds how far a learned policy may grow;
nothing bounds how far behind the load it may stay. A policy that learned to run services hot
(cheap, and on its training load rarely late) can sit under-provisioned through a slow rise that
the HPA would have followed: its asks come from observations like those of its training load,
and a rise of another shape is not one it learned to answer. The rule raises each service's
replicas to at least what the HPA at target T would set, ``ceil(replicas x utilisation / T)``,
with the HPA's 10 % tolerance and its reading of utilisation (over every desired pod, a pod not
ready yet counting as using nothing, as in ``lean@U``), at the CPU limit the policy asked for.
Decreases down to that floor, CPU limits and memory pass as asked. With T near the HPA's own
targets the policy keeps its savings wherever it runs below T and loses only its lateness.

``plan@U``, no service planned above utilisation U. ``floor@T`` follows the HPA, which acts on
utilisation already measured past its target: it cannot stop a decision that plans the load just
measured onto too few pods, since until that decision lands utilisation reads low. A learned policy
makes such cuts from states its own episodes never reach: behind the bootstrap fallback, half the
validation episodes violated the SLO in the four intervals after it took over many thin replicas
from the heuristic, and in the one inspected it had cut every service to one replica at once
(docs/results/2026-12-07-fallback-on-validation.md). The rule raises each service's capacity to
fit the CPU in use (read as ``floor@T`` reads it) at utilisation U on every decision: it first
undoes as much of a CPU-limit cut as that needs (exact, and in place), then adds replicas. Asked
for increases and memory pass. In place of ``floor@0.8`` in the recommended chain it tied on
validation (+0.708 against +0.711, fewer violations on 8 of 10 workloads), so the chain keeps
``floor@0.8``; behind the fallback it recovers half of what the hand-over cost.

Where they run: a controller puts them in front of any policy (``policies.base.PolicyRule``, built
by the registry from names such as ``lean@0.1:stable@120:ddpg:pretrained``), and the env applies
the same rules when its config names them (``rules: "lean@0.1:stable@120"``), so a policy can
train under the rules it will be deployed behind: DESIGN's rule that training and the live
controller run the same decoding and guard, extended to the rules. Both paths parse names with
``parse_rule`` and go through ``RuleChain.effective_action``: rule by rule, innermost first, the
action is decoded, the rule may change it, and only the services it changed are re-encoded, as
each nested wrapper does, so the action the env applies (and shows in the next observation) is
the one a controller would have sent.

Pure maths, plus one small stateful class for the window's memory; nothing here reads a clock.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from envs.action import decode, encode
from envs.errors import ConfigError
from envs.guard import GuardConfig
from envs.metrics import ScalingDecision
from envs.observation import F

MAX_WINDOW_S = 3600.0
"""Longest stabilization window accepted (the HPA accepts up to one hour)."""
BACKLOG_REQUESTS = 1.0
"""A backlog above this many requests counts as pressure."""
REQUEST_CORES = 1.0
"""Cores one request can use: a CPU limit below this slows each request (``latency_limit``)."""
MEM_WINDOW_S = 300.0
"""Window of ``mem@H``'s peak use: the VPA's memory aggregation interval as ``policies.vpa`` runs it."""
MEM_BAND = 1.25
"""``mem@H`` lowers a limit only when it is more than this factor above H x the peak."""
HPA_TOLERANCE = 0.1
"""``floor@T`` binds where utilisation is more than this fraction above T (the HPA's default tolerance)."""
STEADY_RUN = 2
"""``steady@S`` holds an ask made in this many consecutive intervals (``stable@S``: 1)."""
KINDS = ("stable", "steady", "lean", "mem", "floor", "plan")


# ---------------------------------------------------------------------------------- stable@S


def stabilize(
    want: ScalingDecision, current: ScalingDecision, recent: list[ScalingDecision], run: int = 1
) -> ScalingDecision:
    """`want` with each decrease raised to the highest ask held through `run` consecutive `recent`
    asks (which end with `want`; `run` 1: the highest ask, as ``stable@S``), capped at the current
    setting; increases and unchanged settings pass as asked. With fewer than `run` asks remembered,
    decreases pass as asked."""

    def hold(field: str) -> np.ndarray:
        ask = np.asarray(getattr(want, field), dtype=np.float64)
        cur = np.asarray(getattr(current, field), dtype=np.float64)
        asks = np.array([np.asarray(getattr(r, field), dtype=np.float64) for r in recent])
        if len(asks) < run:
            return ask
        held = np.min([asks[i : len(asks) - run + 1 + i] for i in range(run)], axis=0)
        high = np.max(held, axis=0)
        return np.where(ask < cur, np.minimum(cur, np.maximum(ask, high)), ask)

    return ScalingDecision(
        replicas=np.rint(hold("replicas")).astype(np.int64), cpu_limit=hold("cpu_limit"), mem_limit=hold("mem_limit")
    )


def window_intervals(window_s: float, interval_s: float) -> int:
    """Control intervals a window of `window_s` seconds spans (the current one included)."""
    return max(1, math.ceil(window_s / interval_s - 1e-9))


# ---------------------------------------------------------------------------------- lean@U


def growth_room(services: np.ndarray, min_utilization: float) -> np.ndarray:
    """Per service (rows of the observation's service block): by what factor its CPU capacity
    (replicas x CPU limit) may grow. Infinite where the service is throttled, drops requests or
    queues: its utilisation is capped there and says nothing about how much it needs. Elsewhere
    utilisation over `min_utilization`, as the HPA's ``ceil(replicas x utilisation / target)``:
    below 1 nothing may grow, and no step grows a service past running at `min_utilization`.

    Without the bound, one busy interval let a policy quadruple a service that then sat at 4 %
    utilisation. Utilisation is measured on ready pods, so right after a scale-up the one ready
    pod still looks busy while the new ones start; like the HPA, which counts a pod that is not
    ready yet as using nothing when it scales up, the rule reads utilisation over all the desired
    replicas: ``cpu_util x ready / replicas``. Otherwise a policy could add pods interval after
    interval on the strength of pods it had already asked for.
    """
    if min_utilization <= 0:
        return np.full(len(services), np.inf)
    backlog = np.expm1(services[:, F["queue"]] * 10.0)
    starved = (services[:, F["throttled"]] > 0) | (services[:, F["drops"]] > 0) | (backlog > BACKLOG_REQUESTS)
    return np.where(starved, np.inf, desired_utilization(services) / min_utilization)


def desired_utilization(services: np.ndarray) -> np.ndarray:
    """Per service, CPU utilisation over every desired replica, ``cpu_util x ready / replicas``: a
    pod not ready yet counts as using nothing, as the HPA counts it when it scales up."""
    replicas, ready = services[:, F["replicas"]], services[:, F["ready"]]
    share_ready = np.minimum(np.divide(ready, replicas, out=np.ones_like(ready), where=replicas > 0), 1.0)
    return services[:, F["cpu_util"]] * share_ready


def latency_limit(e2e_latency: float) -> float:
    """The CPU limit a raise may reach whatever the utilisation: one core (``REQUEST_CORES``) while
    the app's end-to-end p99 is at or past its SLO (`e2e_latency` is p99 / SLO), else none.

    Below one core a limit slows every request, not only a busy pod: a request runs on one core
    at most, throttled to the limit (``envs.latency``; so does a single-threaded handler under a
    CFS quota). At low load a chain of such services can pass the SLO while each sits at 10-30 %
    utilisation, and utilisation alone would hold the raise that fixes it.
    """
    return REQUEST_CORES if e2e_latency >= 1.0 else 0.0


def hold_growth(
    want: ScalingDecision, current: ScalingDecision, room: np.ndarray, free_limit: float = 0.0
) -> ScalingDecision:
    """`want`, with each service's CPU capacity kept within `room` times its current capacity:
    a CPU-limit raise first (at the current replicas; up to `free_limit` cores whatever the room),
    then added replicas, rounded up as the HPA rounds. Decreases and memory pass as asked; where
    room is below 1, no increase does beyond `free_limit`."""
    room = np.asarray(room, dtype=np.float64)
    free = np.isinf(room)
    bound = np.where(free, 0.0, room)
    cpu_room = np.maximum(current.cpu_limit * np.maximum(bound, 1.0), free_limit)
    cpu = np.where(free | (want.cpu_limit <= current.cpu_limit), want.cpu_limit, np.minimum(want.cpu_limit, cpu_room))
    capacity = current.replicas * current.cpu_limit * bound
    fits = np.ceil(capacity / np.maximum(cpu, 1e-12) - 1e-9)
    grown = np.minimum(want.replicas, np.maximum(current.replicas, fits))
    replicas = np.where(free | (want.replicas <= current.replicas), want.replicas, grown)
    return ScalingDecision(replicas=replicas.astype(np.int64), cpu_limit=cpu, mem_limit=want.mem_limit)


# ---------------------------------------------------------------------------------- mem@H


def memory_use(services: np.ndarray, current: ScalingDecision) -> np.ndarray:
    """Per-replica memory use (MiB) per service, from the observation rows' use over the current
    limit; NaN where no replica is ready (the row then reads 0 and says nothing about use)."""
    util = services[:, F["mem_util"]]
    return np.where(util > 0, util * np.asarray(current.mem_limit, dtype=np.float64), np.nan)


def fit_memory(want: ScalingDecision, current: ScalingDecision, peak: np.ndarray, headroom: float) -> ScalingDecision:
    """`want` with each memory limit set from `peak` use (MiB per replica): ``ceil(headroom x peak)``
    where the current limit is below that or more than ``MEM_BAND`` times above it, else the current
    limit; where the peak is unknown (NaN), the current limit. Replicas and CPU pass as asked."""
    peak = np.asarray(peak, dtype=np.float64)
    cur = np.asarray(current.mem_limit, dtype=np.float64)
    known = np.isfinite(peak)
    target = np.ceil(headroom * np.where(known, peak, 0.0))
    outside = (cur < target) | (cur > MEM_BAND * target)
    mem = np.where(known & outside, target, cur)
    return ScalingDecision(replicas=want.replicas, cpu_limit=want.cpu_limit, mem_limit=mem)


# ---------------------------------------------------------------------------------- floor@T


def cpu_in_use(utilization: np.ndarray, current: ScalingDecision) -> np.ndarray:
    """Per service, the cores in use: `utilization` (over all desired replicas, as
    ``desired_utilization`` reads it) times the current capacity, replicas x CPU limit. How
    ``floor@T`` and ``plan@U`` both read the load they size for."""
    capacity = np.asarray(current.replicas, dtype=np.float64) * np.asarray(current.cpu_limit, dtype=np.float64)
    return utilization * capacity


def hpa_floor(want: ScalingDecision, current: ScalingDecision, services: np.ndarray, target: float) -> ScalingDecision:
    """`want` with each service's replicas raised to at least what the HPA at `target` would set:
    the CPU in use (utilisation over all desired replicas, as the HPA counts a pod not ready yet
    when it scales up) over `target`, in pods of the CPU limit `want` asks for. Only where
    utilisation is above ``target x (1 + HPA_TOLERANCE)``, as the HPA acts; CPU and memory pass."""
    utilization = desired_utilization(services)
    used = cpu_in_use(utilization, current)
    pods = np.ceil(used / (target * np.maximum(np.asarray(want.cpu_limit, dtype=np.float64), 1e-12)) - 1e-9)
    late = utilization > target * (1.0 + HPA_TOLERANCE)
    floor = np.where(late, pods, 0.0).astype(np.int64)
    return ScalingDecision(
        replicas=np.maximum(np.asarray(want.replicas, dtype=np.int64), floor),
        cpu_limit=want.cpu_limit,
        mem_limit=want.mem_limit,
    )


# ---------------------------------------------------------------------------------- plan@U


def planned_floor(
    want: ScalingDecision, current: ScalingDecision, services: np.ndarray, ceiling: float
) -> ScalingDecision:
    """`want`, with each service whose asked capacity (replicas x CPU limit, at least one replica)
    would run the CPU in use now above utilisation `ceiling` given enough: first a CPU-limit cut
    is undone as far as needed (back to the current limit at most; exact, in place, no pod to
    start), then replicas are added at that limit, rounded up as the HPA rounds. Services with
    enough, and memory, pass exactly as asked (an ask of zero replicas is the guard's to raise)."""
    need = cpu_in_use(desired_utilization(services), current) / ceiling
    asked_replicas = np.asarray(want.replicas, dtype=np.int64)
    asked_cpu = np.asarray(want.cpu_limit, dtype=np.float64)
    pods_asked = np.maximum(asked_replicas, 1)
    short = need > pods_asked * asked_cpu * (1.0 + 1e-9)
    undo = np.minimum(need / pods_asked, np.maximum(asked_cpu, current.cpu_limit))
    cpu = np.where(short, np.maximum(asked_cpu, undo), asked_cpu)
    pods = np.ceil(need / np.maximum(cpu, 1e-12) - 1e-9).astype(np.int64)
    replicas = np.where(short, np.maximum(pods_asked, pods), asked_replicas)
    return ScalingDecision(replicas=replicas, cpu_limit=cpu, mem_limit=want.mem_limit)


# ---------------------------------------------------------------------------------- chains


@dataclass(frozen=True)
class Rule:
    """One rule: ``stable`` or ``steady`` with a window in seconds, ``lean`` with a utilisation
    threshold, ``mem`` with a headroom over peak memory use, ``floor`` with the HPA target it keeps up
    with, or ``plan`` with a utilisation ceiling."""

    kind: str
    value: float

    def __str__(self) -> str:
        return f"{self.kind}@{self.value:g}"


def check_rule(kind: str, value: float, where: str) -> Rule:
    """A Rule, or a one-line ConfigError that starts with `where`."""
    if kind in ("stable", "steady") and not 0 <= value <= MAX_WINDOW_S:
        raise ConfigError(f"{where}: stabilization window must be in [0, {MAX_WINDOW_S:g}] s, got {value:g}")
    if kind == "lean" and not 0 <= value <= 1:
        raise ConfigError(f"{where}: utilisation threshold must be in [0, 1], got {value:g}")
    if kind == "mem" and not 1 <= value <= 4:
        raise ConfigError(f"{where}: memory headroom must be in [1, 4] (times peak use), got {value:g}")
    if kind == "floor" and not 0 < value <= 1:
        raise ConfigError(f"{where}: HPA target must be in (0, 1], got {value:g}")
    if kind == "plan" and not 0 < value <= 1:
        raise ConfigError(f"{where}: utilisation ceiling must be in (0, 1], got {value:g}")
    if kind not in KINDS:
        known = "stable@SECONDS, steady@SECONDS, lean@UTILISATION, mem@HEADROOM, floor@TARGET, plan@UTILISATION"
        raise ConfigError(f"{where}: unknown rule {kind!r} (known: {known})")
    return Rule(kind, float(value))


USAGE = {
    "stable": "stable@SECONDS:POLICY, e.g. stable@120:ddpg:pretrained",
    "steady": "steady@SECONDS:POLICY, e.g. steady@120:ddpg:pretrained",
    "lean": "lean@UTILISATION:POLICY, e.g. lean@0.1:ddpg:pretrained",
    "mem": "mem@HEADROOM:POLICY, e.g. mem@1.3:ddpg:pretrained",
    "floor": "floor@TARGET:POLICY, e.g. floor@0.7:ddpg:pretrained",
    "plan": "plan@UTILISATION:POLICY, e.g. plan@0.8:ddpg:pretrained",
}
"""How a rule is written in front of a policy name, for errors."""


def parse_rule(part: str, where: str) -> Rule:
    """One rule written ``kind@X`` (``lean@0.1``, ``stable@120``), or a one-line ConfigError that
    starts with `where`. The only parser of the grammar: the env's ``rules`` key and the policy
    names of the command line both come through here."""
    kind, sep, number = part.partition("@")
    if not sep:
        raise ConfigError(f"{where}: {part!r} is not a rule (write e.g. lean@0.1:stable@120)")
    try:
        value = float(number)
    except ValueError:
        raise ConfigError(f"{where}: {part!r} needs a number after '@', got {number!r}") from None
    return check_rule(kind, value, where)


def parse_rules(text: str, where: str = "rules") -> tuple[Rule, ...]:
    """``"lean@0.1:stable@120"`` -> its rules, outermost first; "" -> none."""
    parts = (p.strip() for p in text.split(":")) if text.strip() else ()
    return tuple(parse_rule(part, where) for part in parts)


def leading_rule(name: str, where: str) -> tuple[Rule, str] | None:
    """The rule a policy name starts with and the name it wraps (``lean@0.1:ddpg:pretrained`` ->
    ``lean@0.1``, ``ddpg:pretrained``); None when the name starts with no rule (``hpa@0.6``)."""
    kind, sep, _ = name.partition("@")
    if not sep or kind not in KINDS:
        return None
    part, sep, inner = name.partition(":")
    if not sep or not inner:
        raise ConfigError(f"{where}: write {USAGE[kind]}")
    return parse_rule(part, where), inner


def override_actions(
    grid: np.ndarray, want: ScalingDecision, got: ScalingDecision, current: ScalingDecision, guard: GuardConfig
) -> np.ndarray:
    """The action rows (n_services, 3) of `grid` with the services a rule changed from `want` to
    `got` re-encoded; the others keep the policy's own action bit for bit, since re-encoding an
    untouched ask could round it to a neighbouring millicore or MiB."""
    changed = (got.replicas != want.replicas) | (got.cpu_limit != want.cpu_limit) | (got.mem_limit != want.mem_limit)
    out = np.array(grid, dtype=np.float32)
    if changed.any():
        out[changed] = encode(got, current, guard)[changed]
    return out


def rewrite_actions(
    grid: np.ndarray,
    current: ScalingDecision,
    guard: GuardConfig,
    change: Callable[[ScalingDecision], ScalingDecision],
) -> np.ndarray:
    """The action rows (n_services, 3) a controller sends when `change` rewrites the decision the
    policy's `grid` asks for: decoded with the env's own decoding, changed, and only the services
    `change` touched re-encoded (``override_actions``)."""
    want = decode(grid, current, guard)
    return override_actions(grid, want, change(want), current, guard)


class RuleChain:
    """Rules applied in order, innermost (last named) first, as nested controller wrappers do;
    holds the stabilization windows' memory of the asks each rule received."""

    def __init__(self, rules: tuple[Rule, ...], interval_s: float):
        self.rules = rules
        self.interval_s = interval_s
        self.reset()

    def reset(self) -> None:
        """Forget the asks of an earlier episode."""
        self.memory = [self._window(r) for r in self.rules]

    def _window(self, rule: Rule) -> deque | None:
        if rule.kind in ("stable", "steady"):
            return deque(maxlen=window_intervals(rule.value, self.interval_s))
        if rule.kind == "mem":
            return deque(maxlen=window_intervals(MEM_WINDOW_S, self.interval_s))
        return None

    def apply(
        self, want: ScalingDecision, current: ScalingDecision, services: np.ndarray, e2e_latency: float = 0.0
    ) -> ScalingDecision:
        """The decision to let through, from the policy's ask, the current settings, the
        services' observation rows and the app's end-to-end p99 over its SLO, with each rule
        handing the next its decision as is (``effective_action`` hands it on as an action, as
        wrappers do; the two agree for one rule)."""
        for k in reversed(range(len(self.rules))):
            want = self._apply_rule(k, want, current, services, e2e_latency)
        return want

    def _apply_rule(
        self, k: int, want: ScalingDecision, current: ScalingDecision, services: np.ndarray, e2e_latency: float
    ) -> ScalingDecision:
        rule, memory = self.rules[k], self.memory[k]
        if rule.kind in ("stable", "steady"):
            memory.append(want)
            return stabilize(want, current, list(memory), STEADY_RUN if rule.kind == "steady" else 1)
        if rule.kind == "mem":
            memory.append(memory_use(services, current))
            peak = np.fmax.reduce(np.vstack(list(memory)), axis=0)  # NaN only where no interval knew the use
            return fit_memory(want, current, peak, rule.value)
        if rule.kind == "floor":
            return hpa_floor(want, current, services, rule.value)
        if rule.kind == "plan":
            return planned_floor(want, current, services, rule.value)
        return hold_growth(want, current, growth_room(services, rule.value), latency_limit(e2e_latency))

    def effective_action(
        self,
        grid: np.ndarray,
        current: ScalingDecision,
        services: np.ndarray,
        guard: GuardConfig,
        e2e_latency: float = 0.0,
    ) -> np.ndarray:
        """The action rows (n_services, 3) a controller would send for the policy's `grid`: each rule
        in turn decodes the action the one inside it sent and re-encodes what it changed, as nested
        wrappers (``policies.base.PolicyRule``) do. An action moves a setting by a bounded factor per
        interval, so what the next rule sees (and a window remembers) is the ask as an action can
        carry it; handing decisions on unencoded let ``stable@S`` outside ``mem@H`` remember a
        memory cut deeper than one interval can make, and the env's episode part from the
        controller's."""
        for k in reversed(range(len(self.rules))):
            grid = rewrite_actions(
                grid, current, guard, lambda want, k=k: self._apply_rule(k, want, current, services, e2e_latency)
            )
        return grid
