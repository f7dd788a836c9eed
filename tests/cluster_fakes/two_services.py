"""A two-service app (front calls back) shared by the backend tests."""

from __future__ import annotations

from envs.app import app_from_dict

NS = "shop"
SPEC = {
    "name": "two",
    "slo_ms": 200,
    "default_peak_rps": 50,
    "entry": "front",
    "node": {"cores": 16, "mem_gib": 32},
    "services": [
        {
            "name": "front",
            "cpu_ms": {"mean": 5, "cv": 1},
            "memory_mib": {"base": 64, "per_inflight": 1},
            "startup_s": 5,
            "replicas": {"min": 1, "max": 6, "initial": 2},
            "cpu_limit": {"min": 0.1, "max": 2.0, "initial": 0.5},
            "mem_limit": {"min": 64, "max": 1024, "initial": 256},
            "calls": [{"to": "back", "per_request": 1}],
        },
        {
            "name": "back",
            "cpu_ms": {"mean": 10, "cv": 1},
            "memory_mib": {"base": 128, "per_inflight": 1},
            "startup_s": 5,
            "replicas": {"min": 1, "max": 8, "initial": 1},
            "cpu_limit": {"min": 0.1, "max": 4.0, "initial": 1.0},
            "mem_limit": {"min": 128, "max": 2048, "initial": 512},
        },
    ],
}
APP = app_from_dict(SPEC)
