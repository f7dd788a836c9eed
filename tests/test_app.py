"""Tests for envs.app: the shipped apps, visits over the call graph, and validation errors.

Every bad input must fail with a ConfigError whose message is one line naming the field, so a
CLI can print it as is. Visits are checked against values worked out by hand from the YAML.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from envs.app import AppSpec, app_from_dict, load_app, shipped_apps
from envs.errors import ConfigError


def service(name: str, calls: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    """A valid service mapping; `extra` overrides top-level keys."""
    d: dict[str, Any] = {
        "name": name,
        "cpu_ms": {"mean": 5, "cv": 1.0},
        "memory_mib": {"base": 100, "per_inflight": 1},
        "startup_s": 10,
        "replicas": {"min": 1, "max": 10, "initial": 2},
        "cpu_limit": {"min": 0.1, "max": 4.0, "initial": 0.5},
        "mem_limit": {"min": 128, "max": 4096, "initial": 512},
    }
    if calls is not None:
        d["calls"] = calls
    d.update(extra)
    return d


def base_app() -> dict[str, Any]:
    """A valid two-service app: front calls back twice per request."""
    return {
        "name": "hand",
        "slo_ms": 100,
        "timeout_s": 5,
        "default_peak_rps": 50,
        "node": {"cores": 8, "mem_gib": 16},
        "services": [service("front", [{"to": "back", "per_request": 2}]), service("back")],
    }


# --- shipped apps --------------------------------------------------------------------------------


def test_shipped_app_names() -> None:
    assert shipped_apps() == ["chain3", "ecommerce", "single", "social-network"]


@pytest.mark.parametrize(
    ("name", "n_services", "entry", "slo_ms", "node_cores", "node_mem_mib"),
    [
        ("single", 1, "api", 250.0, 48.0, 192 * 1024.0),
        ("chain3", 3, "frontend", 150.0, 48.0, 192 * 1024.0),
        ("social-network", 12, "nginx-web", 200.0, 64.0, 256 * 1024.0),
    ],
)
def test_shipped_app_loads(
    name: str, n_services: int, entry: str, slo_ms: float, node_cores: float, node_mem_mib: float
) -> None:
    app = load_app(name)
    assert isinstance(app, AppSpec)
    assert app.name == name
    assert app.source == f"{name}.yaml"
    assert app.n_services == n_services
    assert app.services[app.entry].name == entry
    assert app.slo_ms == slo_ms
    assert app.node_cores == node_cores
    assert app.node_mem_mib == node_mem_mib
    assert app.calls.shape == (n_services, n_services)
    # Callers are listed before callees: the call matrix is strictly upper triangular.
    assert np.all(np.tril(app.calls) == 0)
    for s in app.services:
        assert 0 < s.min_replicas <= s.initial_replicas <= s.max_replicas
        assert 0 < s.cpu_limit_min <= s.cpu_limit_initial <= s.cpu_limit_max
        assert 0 < s.mem_limit_min <= s.mem_limit_initial <= s.mem_limit_max


def test_social_network_has_parallel_fanout() -> None:
    app = load_app("social-network")
    assert 8 <= app.n_services <= 12
    parallel = {s.name for s in app.services if s.parallel_calls}
    assert parallel == {"compose-post", "text"}
    index = {s.name: i for i, s in enumerate(app.services)}
    # compose-post fans out to five services at once.
    assert np.count_nonzero(app.calls[index["compose-post"]]) == 5


def test_chain3_visits_by_hand() -> None:
    app = load_app("chain3")
    assert [s.name for s in app.services] == ["frontend", "logic", "db-proxy"]
    expected_calls = np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=float)
    np.testing.assert_array_equal(app.calls, expected_calls)
    np.testing.assert_allclose(app.visits, [1.0, 1.0, 1.0], rtol=0, atol=1e-12)


def test_social_network_visits_by_hand() -> None:
    # Request mix 0.2 compose / 0.6 home / 0.2 user timeline; post-storage is reached from all
    # three (0.2 + 0.6 + 0.2 = 1), social-graph from home timeline at 0.5 per call (0.3).
    app = load_app("social-network")
    expected = {
        "nginx-web": 1.0,
        "compose-post": 0.2,
        "home-timeline": 0.6,
        "user-timeline": 0.2,
        "text": 0.2,
        "user": 0.2,
        "unique-id": 0.2,
        "media": 0.2,
        "social-graph": 0.3,
        "post-storage": 1.0,
        "url-shorten": 0.2,
        "user-mention": 0.2,
    }
    got = {s.name: float(v) for s, v in zip(app.services, app.visits, strict=True)}
    assert got.keys() == expected.keys()
    for name, v in expected.items():
        assert got[name] == pytest.approx(v, abs=1e-12), name


def diamond(entry: str | None = None) -> dict[str, Any]:
    """a -> b (x1), a -> c (x2), a -> d (x1), b -> d (x3), c -> d (x0.5), d -> e (x2)."""
    d = base_app()
    d["services"] = [
        service(
            "a",
            [{"to": "b", "per_request": 1}, {"to": "c", "per_request": 2}, {"to": "d", "per_request": 1}],
        ),
        service("b", [{"to": "d", "per_request": 3}]),
        service("c", [{"to": "d", "per_request": 0.5}], fanout="parallel"),
        service("d", [{"to": "e", "per_request": 2}]),
        service("e"),
    ]
    if entry is not None:
        d["entry"] = entry
    return d


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        # d: 1 direct + 1 x 3 via b + 2 x 0.5 via c = 5; e: 2 x d = 10.
        (None, [1.0, 1.0, 2.0, 5.0, 10.0]),
        # Entering at b, a and c are never visited; d = 3, e = 6.
        ("b", [0.0, 1.0, 0.0, 3.0, 6.0]),
        ("d", [0.0, 0.0, 0.0, 1.0, 2.0]),
    ],
)
def test_diamond_visits_by_hand(entry: str | None, expected: list[float]) -> None:
    app = app_from_dict(diamond(entry))
    assert app.services[app.entry].name == (entry or "a")
    np.testing.assert_allclose(app.visits, expected, rtol=0, atol=1e-12)
    assert app.services[2].parallel_calls is True
    assert app.services[0].parallel_calls is False


def test_defaults_and_units() -> None:
    d = base_app()
    del d["timeout_s"]
    del d["services"][1]["cpu_ms"]["cv"]
    del d["services"][0]["calls"][0]["per_request"]
    app = app_from_dict(d, source="hand.yaml")
    assert app.timeout_s == 10.0
    assert app.services[1].cpu_ms_cv == 1.0
    assert app.calls[0, 1] == 1.0
    assert app.node_mem_mib == 16 * 1024.0
    assert app.source == "hand.yaml"
    col = app.column("cpu_limit_initial")
    np.testing.assert_array_equal(col, [0.5, 0.5])
    assert col.dtype == np.float64
    assert not col.flags.writeable


def test_load_app_from_path(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "hand.yaml"
    path.write_text(yaml.safe_dump(base_app()))
    app = load_app(path)
    assert app.name == "hand"
    assert app.source == str(path)
    np.testing.assert_allclose(app.visits, [1.0, 2.0])
    assert load_app(str(path)).n_services == 2


# --- bad input -----------------------------------------------------------------------------------


def edit(path: tuple[Any, ...], value: Any = None, delete: bool = False) -> dict[str, Any]:
    """base_app() with the entry at `path` set to `value` (or deleted)."""
    d = copy.deepcopy(base_app())
    node: Any = d
    for key in path[:-1]:
        node = node[key]
    if delete:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return d


BAD_DICTS = [
    # missing fields
    ("missing-top", edit(("slo_ms",), delete=True), ["missing field 'slo_ms'"]),
    ("missing-node", edit(("node",), delete=True), ["missing field 'node'"]),
    ("missing-node-cores", edit(("node", "cores"), delete=True), ["<dict>.node", "missing field 'cores'"]),
    ("missing-name", edit(("services", 1, "name"), delete=True), ["services[1]", "missing field 'name'"]),
    ("missing-startup", edit(("services", 0, "startup_s"), delete=True), ["services[0]", "'startup_s'"]),
    (
        "missing-initial",
        edit(("services", 0, "replicas", "initial"), delete=True),
        ["services[0].replicas", "missing field 'initial'"],
    ),
    ("missing-cpu-mean", edit(("services", 1, "cpu_ms", "mean"), delete=True), ["services[1].cpu_ms", "'mean'"]),
    ("missing-to", edit(("services", 0, "calls", 0, "to"), delete=True), ["services[0].calls[0]", "'to'"]),
    # unknown fields
    ("unknown-top", edit(("slo",), 100), ["unknown field 'slo'"]),
    ("unknown-service", edit(("services", 0, "replica"), 3), ["services[0]", "unknown field 'replica'"]),
    ("unknown-bounds", edit(("services", 1, "cpu_limit", "maximum"), 2), ["services[1].cpu_limit", "'maximum'"]),
    ("unknown-memory", edit(("services", 1, "memory_mib", "peak"), 2), ["services[1].memory_mib", "'peak'"]),
    ("unknown-node", edit(("node", "gpus"), 1), ["node", "unknown field 'gpus'"]),
    ("unknown-call", edit(("services", 0, "calls", 0, "weight"), 1), ["services[0].calls[0]", "'weight'"]),
    # wrong types
    ("type-slo-str", edit(("slo_ms",), "fast"), ["slo_ms", "expected a finite number"]),
    ("type-slo-bool", edit(("slo_ms",), True), ["slo_ms", "expected a finite number"]),
    ("type-slo-nan", edit(("slo_ms",), float("nan")), ["slo_ms", "expected a finite number"]),
    ("type-services", edit(("services",), "front"), ["services", "expected list"]),
    ("type-service-item", edit(("services", 1), "back"), ["services[1]", "expected a mapping"]),
    ("type-name", edit(("services", 0, "name"), 7), ["services[0].name", "expected str"]),
    ("type-replicas-float", edit(("services", 0, "replicas", "min"), 1.5), ["services[0].replicas.min", "integer"]),
    ("type-replicas-bool", edit(("services", 0, "replicas", "max"), True), ["services[0].replicas.max", "integer"]),
    ("type-cpu-limit", edit(("services", 1, "cpu_limit", "max"), "4"), ["services[1].cpu_limit.max", "number"]),
    ("type-calls", edit(("services", 0, "calls"), "back"), ["services[0].calls", "expected a list"]),
    ("type-call-item", edit(("services", 0, "calls", 0), "back"), ["services[0].calls[0]", "mapping"]),
    ("type-node", edit(("node",), 8), ["node", "expected dict"]),
    ("type-fanout", edit(("services", 0, "fanout"), "both"), ["services[0].fanout", "'both'"]),
    # bad values
    (
        "replicas-min-gt-max",
        edit(("services", 0, "replicas"), {"min": 5, "max": 2, "initial": 3}),
        ["services[0].replicas", "min <= initial <= max"],
    ),
    (
        "replicas-initial-gt-max",
        edit(("services", 1, "replicas"), {"min": 1, "max": 2, "initial": 3}),
        ["services[1].replicas"],
    ),
    (
        "replicas-zero-min",
        edit(("services", 1, "replicas"), {"min": 0, "max": 2, "initial": 1}),
        ["services[1].replicas"],
    ),
    (
        "cpu-min-gt-max",
        edit(("services", 0, "cpu_limit"), {"min": 2.0, "max": 1.0, "initial": 1.5}),
        ["services[0].cpu_limit"],
    ),
    (
        "mem-min-gt-max",
        edit(("services", 1, "mem_limit"), {"min": 512, "max": 256, "initial": 300}),
        ["services[1].mem_limit"],
    ),
    ("cpu-mean-zero", edit(("services", 0, "cpu_ms", "mean"), 0), ["services[0].cpu_ms", "mean > 0"]),
    ("cv-negative", edit(("services", 0, "cpu_ms", "cv"), -0.5), ["services[0].cpu_ms", "cv >= 0"]),
    ("mem-base-zero", edit(("services", 1, "memory_mib", "base"), 0), ["services[1].memory_mib"]),
    ("startup-negative", edit(("services", 1, "startup_s"), -1), ["services[1].startup_s", ">= 0"]),
    ("per-request-zero", edit(("services", 0, "calls", 0, "per_request"), 0), ["services[0].calls[0].per_request"]),
    ("slo-zero", edit(("slo_ms",), 0), ["slo_ms", "> 0"]),
    ("timeout-negative", edit(("timeout_s",), -1), ["timeout_s", "> 0"]),
    ("peak-zero", edit(("default_peak_rps",), 0), ["default_peak_rps", "> 0"]),
    ("no-services", edit(("services",), []), ["services", "at least one"]),
    ("duplicate-name", edit(("services", 1, "name"), "front"), ["services", "duplicate"]),
    # graph
    ("call-unknown", edit(("services", 0, "calls", 0, "to"), "ghost"), ["services[0].calls[0].to", "'ghost'"]),
    ("entry-unknown", edit(("entry",), "ghost"), ["entry", "'ghost'"]),
    ("self-call", edit(("services", 1, "calls"), [{"to": "back"}]), ["services[1].calls[0].to", "callers first"]),
    ("cycle", edit(("services", 1, "calls"), [{"to": "front"}]), ["services[1].calls[0].to", "callers first"]),
]


@pytest.mark.parametrize(("data", "fragments"), [pytest.param(d, f, id=i) for i, d, f in BAD_DICTS])
def test_bad_app_dict(data: dict[str, Any], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        app_from_dict(data)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("<dict>")
    for fragment in fragments:
        assert fragment in msg, msg


def test_callee_listed_before_caller() -> None:
    # The same graph as base_app(), listed callee first: rejected, naming the edge.
    d = base_app()
    d["services"] = [service("back"), service("front", [{"to": "back", "per_request": 2}])]
    with pytest.raises(ConfigError, match=r"^<dict>\.services\[1\]\.calls\[0\]\.to: services must be listed"):
        app_from_dict(d)


def test_longer_cycle() -> None:
    d = base_app()
    d["services"] = [
        service("a", [{"to": "b"}]),
        service("b", [{"to": "c"}]),
        service("c", [{"to": "a"}]),
    ]
    with pytest.raises(ConfigError, match=r"services\[2\]\.calls\[0\]\.to"):
        app_from_dict(d)


def test_top_level_not_a_mapping() -> None:
    with pytest.raises(ConfigError, match=r"^src: expected a mapping at the top level$"):
        app_from_dict(["services"], source="src")


@pytest.mark.parametrize(
    ("key", "value", "field"),
    [
        ("cores", 0, "node.cores"),
        ("mem_gib", -1, "node.mem_gib"),
    ],
)
def test_node_size_error_names_the_yaml_field(key: str, value: float, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        app_from_dict(edit(("node", key), value))
    assert str(err.value) == f"<dict>.{field}: must be > 0"


def test_duplicate_call_edge_is_rejected() -> None:
    d = base_app()
    d["services"][0]["calls"] = [{"to": "back", "per_request": 2}, {"to": "back", "per_request": 1}]
    # Rejected, naming the second edge (adding the two up silently would hide a typo).
    with pytest.raises(ConfigError) as err:
        app_from_dict(d)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("<dict>.services[0].calls[1].to:")


# --- files ---------------------------------------------------------------------------------------


def test_unknown_app_name() -> None:
    with pytest.raises(ConfigError) as err:
        load_app("no-such-app")
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith("unknown app 'no-such-app'")
    assert "chain3" in msg and "social-network" in msg


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "missing.yaml"
    with pytest.raises(ConfigError) as err:
        load_app(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg == f"{path}: app file not found"


@pytest.mark.parametrize(
    "text",
    [
        "name: x\nservices: [a, b\n",  # unclosed flow sequence
        "name: x\n  slo_ms: 100\n bad: [\n",  # bad indentation
        "services:\n\t- name: a\n",  # tab indentation
    ],
)
def test_bad_yaml_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_app(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: not valid YAML")


@pytest.mark.parametrize("text", ["", "- a\n- b\n", "just a string\n"])
def test_yaml_file_not_a_mapping(tmp_path: Path, text: str) -> None:
    path = tmp_path / "list.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r"expected a mapping at the top level$") as err:
        load_app(path)
    assert str(err.value).startswith(str(path))


def test_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "typo.yaml"
    path.write_text(yaml.safe_dump(edit(("services", 1, "startup_s"), "soon")))
    with pytest.raises(ConfigError) as err:
        load_app(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}.services[1].startup_s: expected a finite number")
