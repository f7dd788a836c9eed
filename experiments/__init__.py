"""Experiment entry points: training configs (``configs/*.yaml``), ``ray job submit`` and Tune sweeps."""
