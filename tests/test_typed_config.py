"""The one reader of config mappings: types by annotation, nested sections, one-line errors that
start with the full key."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from envs.errors import ConfigError
from envs.typed_config import from_mapping


@dataclass(frozen=True)
class Inner:
    weight: float = 1.0
    """A weight."""
    on: bool = True
    """A switch."""


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    """A name."""
    count: int = 1
    """A count."""
    limit: float | None = None
    """An optional limit."""
    specs: tuple[str, ...] = ("a",)
    """Specs."""
    names: list[str] = field(default_factory=list)
    """Names."""
    inner: Inner = field(default_factory=Inner)
    """A nested section."""


def test_reads_by_annotation() -> None:
    got = from_mapping(Outer, {"count": 3, "limit": 2, "specs": "b", "names": ["p", "q"], "inner": {"weight": 2}})
    assert got == Outer(count=3, limit=2.0, specs=("b",), names=["p", "q"], inner=Inner(weight=2.0))
    assert isinstance(got.limit, float) and isinstance(got.inner.weight, float)
    assert from_mapping(Outer, None) == Outer() == from_mapping(Outer, {"limit": None})
    assert from_mapping(Outer, got) is got


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"cuont": 1}, "top.cuont: unknown key (known: count, inner, limit, name, names, specs)"),
        ({"count": 1.0}, "top.count: expected an integer, got 1.0"),
        ({"count": True}, "top.count: expected an integer, got True"),
        ({"limit": "2"}, "top.limit: expected a number, got '2'"),
        ({"name": 3}, "top.name: expected a string, got 3"),
        ({"specs": ["a", 1]}, "top.specs: expected a list of strings, got ['a', 1]"),
        ({"inner": 3}, "top.inner: expected a mapping, got 3"),
        ({"inner": {"weigth": 1}}, "top.inner.weigth: unknown key (known: on, weight)"),
        ({"inner": {"weight": False}}, "top.inner.weight: expected a number, got False"),
        ({"inner": {"on": 1}}, "top.inner.on: expected true or false, got 1"),
    ],
)
def test_errors_name_the_full_key(data: dict, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        from_mapping(Outer, data, "top")
    assert str(err.value) == message
