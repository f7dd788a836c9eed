"""Plain mappings (YAML, ``--set``, RLlib's env_config) into frozen config dataclasses.

Every config of the project is a dataclass with a docstring under each field; this is the one
place that reads a mapping into one. It rejects unknown keys and wrong types with a one-line
``ConfigError`` that starts with the key's full name (``env.reward.memroy: unknown key (known:
cost, ...)``, ``run.eval_seeds: expected an integer, got 'two'``). Ranges and relations between
fields are each dataclass's own ``__post_init__``, whose errors name the key the same way.

The field's annotation says what is accepted: ``int`` (not a bool, not a float), ``float`` (any
number but a bool, stored as float), ``bool``, ``str``, ``X | None``, ``list[str]`` and
``tuple[str, ...]`` (a lone string is a list of one), another config dataclass (a nested mapping,
read with its key path) and anything else as given (``dict``, ``Any``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from envs.errors import ConfigError

T = TypeVar("T")

SCALARS: dict[type, tuple[Callable[[Any], bool], str]] = {
    bool: (lambda v: isinstance(v, bool), "true or false"),
    int: (lambda v: isinstance(v, int) and not isinstance(v, bool), "an integer"),
    float: (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number"),
    str: (lambda v: isinstance(v, str), "a string"),
}
"""What each scalar annotation accepts (a bool is never a number), and its name for errors."""


def from_mapping(cls: type[T], data: Any, where: str = "") -> T:
    """An instance of the dataclass `cls` from `data`; `where` is the key path of `data`
    (``"env"``, ``"bootstrap"``; ``""`` for the top level), used in every error."""
    if isinstance(data, cls):
        return data
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where or cls.__name__}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    values = {}
    for key, value in data.items():
        full = f"{where}.{key}" if where else str(key)
        if key not in names:
            raise ConfigError(f"{full}: unknown key (known: {', '.join(sorted(names))})")
        values[key] = _read(full, value, hints[key])
    return cls(**values)


def _read(key: str, value: Any, kind: Any) -> Any:
    """`value` as the annotation `kind` wants it, or a ConfigError naming `key`."""
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin in (types.UnionType, typing.Union):
        if value is None and type(None) in args:
            return None
        (kind,) = [a for a in args if a is not type(None)]
        return _read(key, value, kind)
    if dataclasses.is_dataclass(kind):
        return from_mapping(kind, value, key)  # type: ignore[arg-type]
    if origin in (list, tuple):
        item = args[0] if args else str
        if item is str:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
                raise ConfigError(f"{key}: expected a list of strings, got {value!r}")
            return origin(value)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return origin(_read(f"{key}[{i}]", v, item) for i, v in enumerate(value))
    if kind in SCALARS:
        accepts, what = SCALARS[kind]
        if not accepts(value):
            raise ConfigError(f"{key}: expected {what}, got {value!r}")
        return float(value) if kind is float else value
    return value
