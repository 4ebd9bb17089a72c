"""User-facing errors: each carries a one-line message naming the bad thing."""

from __future__ import annotations


class RtsegError(Exception):
    """An error the CLI prints as one line (no traceback) before exiting non-zero."""


class SourceError(RtsegError):
    """A source (file, camera, stream, image) cannot be opened or read."""


class SourceStalledError(SourceError):
    """A live source stopped delivering fresh frames."""


class ModelError(RtsegError):
    """A model file is missing, corrupt, or does not fit the model contract."""


class SinkError(RtsegError):
    """An output (video file, mask folder, stats file) cannot be written."""
