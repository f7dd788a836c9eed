"""One TensorBoard dashboard for training runs and sweeps: a custom-scalars layout.

Tune writes every reported metric of a trial as a scalar tagged ``ray/tune/<name>``; the layout
groups them the way an operator reads a run (is it safe and cheap, is the guard holding it back,
who is in control, has the meta-learner learnt the workloads, are the losses sane) instead of
TensorBoard's alphabetical wall of charts. Charts match tags by regular expression, so metrics
added later (money, new guard reasons) land in their group without a change here. Written once
per run into Tune's experiment folder, where TensorBoard finds it for every trial beneath.
"""

from __future__ import annotations

import time
from pathlib import Path

PREFIX = "ray/tune/"

LAYOUT: dict[str, list[tuple[str, list[str]]]] = {
    "SLO and cost": [
        ("violation rate (training episodes, validation)", ["slo/.*", "validation/slo_violation_rate"]),
        ("cost (training episodes, validation)", ["cost/.*", "validation/cpu_core_hours", "validation/money.*"]),
        ("validation score (what selects the policy)", ["validation/score", "best/score"]),
        ("episode return", ["episode_return_mean"]),
        ("exploration noise (sigma at the start of each iteration)", ["exploration/.*"]),
    ],
    "Guard clamps": [("clamps per interval, by reason", ["guard/.*"])],
    "Bootstrap": [
        ("phase and policy share", ["bootstrap/phase", "bootstrap/policy_share"]),
        ("hand-overs", ["bootstrap/handover.*", "bootstrap/.*fallback.*"]),
        ("everything else of the lifecycle", ["bootstrap/.*"]),
    ],
    "Meta-learner": [
        ("workload probe and workload code", ["meta/.*"]),
        ("meta-learner losses", ["losses/meta.*", "losses/workload.*"]),
    ],
    "Losses and Q values": [
        ("actor and critic losses", ["losses/actor", "losses/critic", "losses/behaviour_cloning"]),
        ("Q values", ["q/.*"]),
        ("TD error", ["td_error/.*"]),
    ],
}
"""Category -> charts, each a title and the metric names (regular expressions) it plots."""

LAYOUT_FILE_SUFFIX = ".aware-ray-dashboard"


def layout_proto():
    """The layout as TensorBoard's ``Layout`` proto (tags with Tune's prefix)."""
    from tensorboard.plugins.custom_scalar import layout_pb2

    categories = []
    for title, charts in LAYOUT.items():
        chart_protos = [
            layout_pb2.Chart(
                title=chart,
                multiline=layout_pb2.MultilineChartContent(tag=[f"^{PREFIX}{t}$" for t in tags]),
            )
            for chart, tags in charts
        ]
        categories.append(layout_pb2.Category(title=title, chart=chart_protos))
    return layout_pb2.Layout(category=categories)


def write_layout(logdir: str | Path) -> Path:
    """Write the layout as an event file in ``logdir`` (Tune's experiment folder); returns its path.

    A run resumed or swept again writes it again; TensorBoard merges identical layouts.
    """
    from tensorboard.compat.proto import event_pb2, summary_pb2, tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorboard.plugins.custom_scalar import metadata
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    # The plugin's own helper needs TensorFlow for one string tensor; this is that proto by hand.
    tensor = tensor_pb2.TensorProto(
        dtype=types_pb2.DT_STRING,
        tensor_shape=tensor_shape_pb2.TensorShapeProto(),
        string_val=[layout_proto().SerializeToString()],
    )
    summary = summary_pb2.Summary(
        value=[
            summary_pb2.Summary.Value(
                tag=metadata.CONFIG_SUMMARY_TAG, metadata=metadata.create_summary_metadata(), tensor=tensor
            )
        ]
    )
    logdir = Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    before = set(logdir.glob(f"*{LAYOUT_FILE_SUFFIX}"))
    writer = EventFileWriter(str(logdir), filename_suffix=LAYOUT_FILE_SUFFIX)
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=0, summary=summary))
    writer.close()
    (path,) = set(logdir.glob(f"*{LAYOUT_FILE_SUFFIX}")) - before
    return path
