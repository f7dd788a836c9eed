"""namespace_for: one namespace per (env runner, vector index)."""

from __future__ import annotations

import pytest

from cluster.namespaces import namespace_for


def test_default_and_mapped_names() -> None:
    assert namespace_for("aware-train", 0, 0) == "aware-train-0-0"
    assert namespace_for("aware-train", 3, 1) == "aware-train-3-1"
    assert namespace_for("x", 1, 0, {"1-0": "team-a-copy"}) == "team-a-copy"
    names = {namespace_for("t", i, j) for i in range(4) for j in range(3)}
    assert len(names) == 12  # no two runners share a namespace


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("t", -1, 0), "runner_index"),
        (("t", 0, True), "vector_index"),
        (("T_bad", 0, 0), "namespace_prefix"),
        (("t", 2, 0, {"0-0": "a"}), r"namespaces\.2-0"),
        (("a" * 70, 0, 0), "namespace_prefix"),
    ],
)
def test_errors_name_the_field(args, field) -> None:
    with pytest.raises(ValueError, match=f"^{field}"):
        namespace_for(*args)
