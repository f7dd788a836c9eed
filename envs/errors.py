"""Errors raised for bad input: one line that names the file, field or request at fault."""

from __future__ import annotations


class ConfigError(ValueError):
    """A configuration value (app spec, env config, workload spec) is missing or invalid.

    The message is a single line that starts with where the problem is (file and field),
    so a CLI can print it as is and exit with code 2.
    """


class TraceError(ValueError):
    """A trace CSV cannot be used; the message names the file, the line and the problem."""
