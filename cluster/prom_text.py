"""Reading Prometheus text exposition (pods' ``/metrics``, cAdvisor) into plain samples."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


def parse(text: str) -> list[Sample]:
    """Every sample of an exposition; raises ValueError (one line) on text that is not the format."""
    try:
        return [
            Sample(s.name, dict(s.labels), float(s.value))
            for family in text_string_to_metric_families(text)
            for s in family.samples
        ]
    except (ValueError, TypeError, IndexError) as exc:
        raise ValueError(f"not Prometheus text format ({str(exc).splitlines()[0] if str(exc) else exc})") from None


def total(samples: list[Sample], name: str, where: Callable[[Mapping[str, str]], bool] | None = None) -> float | None:
    """Sum of the samples called ``name`` (over label sets, filtered by ``where``); None when there are none."""
    values = [s.value for s in samples if s.name == name and (where is None or where(s.labels))]
    return float(sum(values)) if values else None


def buckets(samples: list[Sample], histogram: str) -> dict[float, float] | None:
    """Cumulative ``le`` -> count of a histogram, summed over its other labels; None when absent."""
    out: dict[float, float] = {}
    for s in samples:
        if s.name == histogram + "_bucket" and "le" in s.labels:
            le = math.inf if s.labels["le"] in ("+Inf", "Inf") else float(s.labels["le"])
            out[le] = out.get(le, 0.0) + s.value
    return out or None
