"""Errors of the sweep; each message is one line that names what to fix."""

from __future__ import annotations

__all__ = ["SpaceError", "StorageError", "SweepError", "TrialCrash", "TrialError"]


class SweepError(Exception):
    """A sweep cannot start or finish (bad input, no feasible trial)."""


class SpaceError(SweepError):
    """The search space file is malformed or names a key the config refuses."""


class StorageError(SweepError):
    """The storage URL is malformed, unsupported, or the database cannot be reached."""


class TrialError(Exception):
    """One trial cannot be evaluated (e.g. a combination of values the config refuses).

    The trial is recorded as failed with this message; the sweep goes on.
    """


class TrialCrash(Exception):
    """A trial's backtest raised an unexpected exception: a bug, kept with its traceback."""
