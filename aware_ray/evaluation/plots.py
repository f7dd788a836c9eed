"""Plots of an evaluation: time series per workload and the cost/violation plane."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from aware_ray.evaluation.rollout import EpisodeResult
from aware_ray.evaluation.scoreboard import DEFAULT_MEMORY_PRICE, frontier, heuristic_family, mean_by
from policies.registry import FRONTIER_FAMILIES

FAMILY_COLORS = {"hpa": "tab:blue", "hpa+vpa-inplace": "tab:green", "predictive": "tab:purple"}


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:80]


def _style(policy: str) -> dict[str, Any]:
    if heuristic_family(policy) is not None:
        return {"lw": 0.8, "alpha": 0.6}
    if policy == "oracle":
        return {"lw": 1.2, "color": "black", "ls": "--"}
    return {"lw": 1.4}


def plot_timeseries(path: Path, workload: str, results: list[EpisodeResult], slo_ms: float, interval_s: float) -> None:
    """Load, replicas, reserved cores and end-to-end p99 (with the SLO) over time, a line per policy."""
    fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True)
    first = results[0]
    t = np.arange(len(first.external_rps)) * interval_s / 3600.0
    axes[0].plot(t, first.external_rps, color="tab:gray", lw=0.8)
    axes[0].set_ylabel("requests/s")
    axes[0].set_title(f"{workload} (seed {first.summary['seed']})")
    for r in results:
        tt = np.arange(len(r.cores)) * interval_s / 3600.0
        st = _style(r.summary["policy"])
        axes[1].plot(tt, r.replicas, label=r.summary["policy"], **st)
        axes[2].plot(tt, r.cores, **st)
        axes[3].plot(tt, np.maximum(r.e2e_p99_ms, 1e-1), **st)
    axes[1].set_ylabel("replicas (all services)")
    axes[1].legend(ncol=5, fontsize=7, loc="upper left")
    axes[2].set_ylabel("CPU cores reserved")
    axes[3].axhline(slo_ms, color="red", lw=1.0, label="SLO")
    axes[3].set_yscale("log")
    axes[3].set_ylabel("end-to-end p99 (ms)")
    axes[3].set_xlabel("hours")
    axes[3].legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_frontier(path: Path, rows: list[dict[str, Any]], memory_price: float = DEFAULT_MEMORY_PRICE) -> None:
    """Money/violation plane per workload: each heuristic family's points, the heuristic frontier
    (their lower-left envelope) as a line, other policies as points."""
    means = mean_by(rows, memory_price=memory_price)
    traces = sorted({k[1] for k in means})
    cols = min(3, len(traces))
    nrows = int(np.ceil(len(traces) / cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(5 * cols, 4 * nrows), squeeze=False)
    for ax, trace in zip(axes.ravel(), traces, strict=False):
        every = []
        for family in FRONTIER_FAMILIES:
            pts = sorted(
                (float(p.partition("@")[2]), m["slo_violation_rate"], m["money"])
                for (p, t), m in means.items()
                if t == trace and heuristic_family(p) == family
            )
            if not pts:
                continue
            every += [(v, c) for _, v, c in pts]
            color = FAMILY_COLORS.get(family)
            ax.plot([100 * v for _, v, _ in pts], [c for _, _, c in pts], "o:", color=color, ms=4, label=family)
            for x, v, c in pts:
                ax.annotate(f"{x:g}", (100 * v, c), fontsize=6, xytext=(3, 3), textcoords="offset points")
        if every:
            front = frontier(every)
            ax.plot(
                [100 * v for v, _ in front],
                [c for _, c in front],
                "-",
                color="black",
                lw=2,
                alpha=0.5,
                label="heuristic frontier",
            )
        for (p, t), m in sorted(means.items()):
            if t != trace or heuristic_family(p) is not None:
                continue
            marker = "*" if p == "oracle" else "s"
            ax.plot(100 * m["slo_violation_rate"], m["money"], marker, ms=10 if p == "oracle" else 7, label=p)
        ax.set_title(trace[:50], fontsize=9)
        ax.set_xlabel("SLO violations (% of intervals)")
        ax.set_ylabel("money (core-h + GiB-h x memory price)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in axes.ravel()[len(traces) :]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_all(d: Path, summary: dict[str, Any], results: list[EpisodeResult]) -> None:
    """Write every plot into `d` and list them in summary['plots']."""
    plots = ["frontier.png"]
    plot_frontier(d / "frontier.png", summary["results"], summary.get("memory_price", DEFAULT_MEMORY_PRICE))
    by_trace: dict[str, list[EpisodeResult]] = {}
    for r in results:
        if r.summary["seed"] == 0:
            by_trace.setdefault(r.summary["trace"], []).append(r)
    for trace, rs in by_trace.items():
        name = f"timeseries_{slug(trace)}.png"
        plot_timeseries(d / name, trace, rs, summary["slo_ms"], summary.get("interval_s", 15.0))
        plots.append(name)
    summary["plots"] = plots
