"""Error types with messages that name the file, field or value at fault."""

__all__ = ["SdsnnError", "ConfigError", "DataError", "DeviceError", "RunError", "FigureError"]


class SdsnnError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(SdsnnError, ValueError):
    """A model configuration is malformed: the message names file, key and expectation."""


class DataError(SdsnnError, ValueError):
    """A data file is missing or malformed: the message names the file."""


class DeviceError(SdsnnError, RuntimeError):
    """A Brian2 device is unknown or cannot be set up here."""


class RunError(SdsnnError, RuntimeError):
    """A run cannot start or continue (bad run folder, unhealthy network)."""


class FigureError(SdsnnError, ValueError):
    """A figure cannot be drawn or saved as asked (period out of range, format not available)."""
