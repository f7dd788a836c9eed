"""Kubernetes resource quantities <-> the units of ``envs`` (cores, MiB).

Limits are written in whole millicores and whole MiB, the granularity the guard rounds to, so a
decision that did not change does not cause a patch because of float noise.
"""

from __future__ import annotations

import math
import re

_SUFFIX = {
    "n": 1e-9,
    "u": 1e-6,
    "m": 1e-3,
    "": 1.0,
    "k": 1e3,
    "M": 1e6,
    "G": 1e9,
    "T": 1e12,
    "P": 1e15,
    "E": 1e18,
    "Ki": 2.0**10,
    "Mi": 2.0**20,
    "Gi": 2.0**30,
    "Ti": 2.0**40,
    "Pi": 2.0**50,
    "Ei": 2.0**60,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")


def parse_quantity(text: str | int | float, where: str = "quantity") -> float:
    """A Kubernetes quantity (``500m``, ``1.5``, ``256Mi``, ``1e3``) as a plain number."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    match = _QUANTITY.match(str(text).strip())
    if not match:
        raise ValueError(f"{where}: not a Kubernetes quantity: {text!r}")
    value = float(match.group(1)) * _SUFFIX[match.group(2) or ""]
    if not math.isfinite(value):
        raise ValueError(f"{where}: not finite: {text!r}")
    return value


def cpu_cores(text: str | int | float, where: str = "cpu") -> float:
    """CPU quantity -> cores."""
    return parse_quantity(text, where)


def mem_mib(text: str | int | float, where: str = "memory") -> float:
    """Memory quantity -> MiB."""
    return parse_quantity(text, where) / 2.0**20


def format_cpu(cores: float) -> str:
    """Cores -> whole millicores (``"1500m"``)."""
    return f"{max(1, round(cores * 1000))}m"


def format_mem(mib: float) -> str:
    """MiB -> whole MiB (``"256Mi"``)."""
    return f"{max(1, round(mib))}Mi"
