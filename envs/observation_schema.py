"""The observation schema: what a policy was trained to read, written into its ``policy.json``.

A policy's weights mean something only against the observation they were trained on: the order
of the features in every block, how each was scaled and the sizes of the blocks. Changing any of
them (a feature added, a scaling changed) leaves the weights loadable and the actions silently
wrong. So an exported policy carries the schema of the code that trained it, and loading compares
it with the schema of the code that runs it; ``first_difference`` names the first feature where
they part, for a one-line error.
"""

from __future__ import annotations

from typing import Any

from envs.load_context import CONTEXT_STATS
from envs.observation import APP_FEATURES, HISTORY_FEATURES, SERVICE_FEATURES, ObservationLayout

SCHEMA_VERSION = 1
"""Bumped when the schema's own shape (not the features) changes."""

SCALINGS: dict[str, str] = {
    "cpu_util": "cpu used / (ready replicas x cpu limit), 0 with none ready",
    "mem_util": "memory used per replica / memory limit, clip [0, 2], 0 with none ready",
    "replicas": "desired replicas / max replicas",
    "ready": "ready replicas / max replicas",
    "pending": "pending replicas / max replicas",
    "cpu_limit": "cpu limit / cpu_limit_max",
    "mem_limit": "memory limit / mem_limit_max",
    "load": "arrival rate / (max(replicas, 1) x 1000 x cpu limit / cpu_ms_mean), clip [0, 4]",
    "log_rate": "log1p(arrival rate) / 10",
    "queue": "log1p(backlog) / 10",
    "latency": "service p99 / slo, clip [0, 10]",
    "drops": "dropped / (arrival rate x interval), clip [0, 1]",
    "throttled": "share of the interval cpu-saturated",
    "last_replicas": "last applied action, replicas component, [-1, 1]",
    "last_cpu": "last applied action, cpu component, [-1, 1]",
    "last_mem": "last applied action, memory component, [-1, 1]",
    "cpu_cost": "log1p(cpu_ms_mean) / 5",
    "startup": "startup_s / 120",
    "visits": "visits per external request, clip [0, 4]",
    "mask": "1 real service, 0 padding",
    "e2e_latency": "end-to-end p99 / slo, clip [0, 10]",
    "e2e_drops": "dropped_total / (external rps x interval), clip [0, 1]",
    "log_external": "log1p(external rps) / 10",
    "external_trend": "external rps / previous external rps - 1, clip [-1, 1]",
    "node_cpu": "sum(replicas x cpu limit) / node cores",
    "node_mem": "sum(replicas x memory limit) / node memory",
    "n_services": "services / max_services",
    "mean_cpu_util": "mean over services of cpu_util",
    "mean_load": "mean over services of load",
    "action_replicas": "mean over services of the applied action's replicas component",
    "action_cpu": "mean over services of the applied action's cpu component",
    "action_mem": "mean over services of the applied action's memory component",
    "reward": "reward of the interval, clip [-10, 10]",
    "max": "max log1p(rate) over the span - current",
    "min": "min log1p(rate) over the span - current",
    "mean": "mean log1p(rate) over the span - current",
    "std": "std of log1p(rate) over the span",
    "mean_step": "mean |change| of log1p(rate)",
    "max_step": "max |change| of log1p(rate)",
    "jumps": "share of changes > 0.1",
    "above_mean": "share of the span above its mean",
    "filled": "share of the span observed",
    "bucket": "coarse mean of log1p(rate) over span/buckets intervals - current",
}
"""How each feature is scaled (the feature tuples in ``envs.observation`` say what it means)."""


def _block(names: tuple[str, ...]) -> list[dict[str, str]]:
    return [{"name": n, "scaling": SCALINGS[n.split("[")[0]]} for n in names]


def observation_schema(layout: ObservationLayout) -> dict[str, Any]:
    """The schema of observations of `layout` as this code builds them (JSON-ready)."""
    context: tuple[str, ...] = ()
    if layout.context_span:
        context = (*CONTEXT_STATS, *(f"bucket[{i}]" for i in range(layout.context_buckets)))
    return {
        "version": SCHEMA_VERSION,
        "layout": {
            "max_services": layout.max_services,
            "history_window": layout.history_window,
            "context_span": layout.context_span,
            "context_buckets": layout.context_buckets,
            "size": layout.size,
        },
        "clip": [-10.0, 10.0],
        "blocks": {
            "service": _block(SERVICE_FEATURES),
            "app": _block(APP_FEATURES),
            "history": _block(HISTORY_FEATURES) if layout.history_window else [],
            "context": _block(context),
        },
    }


def first_difference(stored: dict[str, Any], current: dict[str, Any]) -> str | None:
    """Where `stored` (a policy's schema) and `current` (the code's) first differ, or None.

    The answer names the block and the feature (``service feature 7: policy has 'load' scaled
    '...', code has ...``), so a mismatch can be reported in one line.
    """
    if stored.get("version") != current["version"]:
        return f"schema version: policy has {stored.get('version')!r}, code has {current['version']}"
    for key, value in current["layout"].items():
        if stored.get("layout", {}).get(key) != value:
            return f"layout.{key}: policy has {stored.get('layout', {}).get(key)!r}, code has {value!r}"
    if list(stored.get("clip", [])) != current["clip"]:
        return f"clip: policy has {stored.get('clip')!r}, code has {current['clip']!r}"
    for block, feats in current["blocks"].items():
        theirs = stored.get("blocks", {}).get(block, [])
        for i in range(max(len(theirs), len(feats))):
            a = theirs[i] if i < len(theirs) else None
            b = feats[i] if i < len(feats) else None
            if a != b:
                return f"{block} feature {i}: policy has {_fmt(a)}, code has {_fmt(b)}"
    return None


def _fmt(feature: dict[str, str] | None) -> str:
    return "nothing" if feature is None else f"{feature.get('name')!r} ({feature.get('scaling')})"
