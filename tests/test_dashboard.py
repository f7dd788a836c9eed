"""The TensorBoard dashboard: the layout file is what TensorBoard's custom-scalars plugin reads,
and its charts cover the metrics training reports."""

from __future__ import annotations

import re
from pathlib import Path

from aware_ray.training.callbacks import CPU_CORE_HOURS, GUARD_CLAMPS, SLO_VIOLATION_RATE
from aware_ray.training.dashboard import LAYOUT, PREFIX, write_layout

# Metric names `train` reports (see aware_ray/training/train.py and the learner's metrics).
REPORTED = [
    SLO_VIOLATION_RATE,
    CPU_CORE_HOURS,
    GUARD_CLAMPS,
    "validation/score",
    "validation/slo_violation_rate",
    "validation/cpu_core_hours",
    "bootstrap/phase",
    "bootstrap/policy_share",
    "meta/probe_accuracy",
    "losses/actor",
    "losses/critic",
    "losses/meta_aux",
    "q/mean",
    "td_error/mean",
]


def test_every_reported_metric_has_a_chart() -> None:
    patterns = [re.compile(f"^{PREFIX}{t}$") for charts in LAYOUT.values() for _, tags in charts for t in tags]
    missing = [m for m in REPORTED if not any(p.match(PREFIX + m) for p in patterns)]
    assert not missing
    assert set(LAYOUT) == {"SLO and cost", "Guard clamps", "Bootstrap", "Meta-learner", "Losses and Q values"}


def test_tensorboard_reads_the_layout_back(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.custom_scalar import layout_pb2, metadata

    path = write_layout(tmp_path)
    acc = EventAccumulator(str(path))
    acc.Reload()
    assert metadata.CONFIG_SUMMARY_TAG in acc.Tags()["tensors"]
    (event,) = acc.Tensors(metadata.CONFIG_SUMMARY_TAG)
    layout = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    assert [c.title for c in layout.category] == list(LAYOUT)
    chart = layout.category[0].chart[0]
    assert chart.multiline.tag[0] == f"^{PREFIX}slo/.*$"
    # A second write (a resumed run) adds a file and leaves the first whole.
    assert write_layout(tmp_path) != path and path.exists()
