"""Errors of the engine. Every message names the subject, the bad value and the fix."""

from __future__ import annotations


class DriftlineError(Exception):
    """Root of every error driftline raises on purpose."""


class ConfigError(DriftlineError):
    """A command-line option or configuration value is invalid."""


class DataError(DriftlineError):
    """A data file cannot be read, or does not have the columns asked for."""


class BaselineError(DriftlineError):
    """A baseline file is missing, corrupt, or from a newer driftline."""


class RegistryError(DriftlineError):
    """The model registry cannot be reached, or lacks the model or version asked for."""


class UnknownVersion(RegistryError):
    """The registry has no such model version."""


class AlertError(DriftlineError):
    """An alert cannot be stored in the outbox or delivered to a receiver."""


class OutboxFull(AlertError):
    """The alert outbox holds its maximum of undelivered rows; a new alert is refused."""


class ActionError(DriftlineError):
    """An action cannot be recorded, found, approved or carried out."""


class UnknownAction(ActionError):
    """No action has the id (or prefix) given."""


class ActionConflict(ActionError):
    """The action is not in a state that allows what was asked (e.g. approving a done one)."""
