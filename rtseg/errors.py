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


class ExportError(RtsegError):
    """A step of ``rtseg export`` failed (the message names the step and the file)."""


class DatasetError(RtsegError):
    """A dataset file is missing, unreadable or inconsistent."""


class OptionError(RtsegError, ValueError):
    """An option value out of range or of the wrong kind."""


class PipelineError(RtsegError):
    """A pipeline stage failed with an unexpected exception (the cause is chained)."""


class NothingWrittenError(RtsegError):
    """A run ended without writing a single frame."""


class MissingExtraError(RtsegError):
    """A command needs an optional extra (``pip install 'rtseg[train]'``) that is not installed."""


MAX_MESSAGE = 300


def first_line(exc: BaseException, limit: int = MAX_MESSAGE) -> str:
    """The first non-empty line of an exception's message, capped at ``limit`` characters.

    Uses ``strerror`` when the exception has one (OSError, PyAV's FFmpegError: the text
    without the errno prefix and repeated file name), drops onnxruntime's ``[ONNXRuntimeError]``
    prefix, and falls back to the exception's type name for an empty message.

    Example:
        >>> first_line(ValueError("bad value\\nmore detail"))
        'bad value'
    """
    text = getattr(exc, "strerror", None) or str(exc)
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    line = lines[0].replace("[ONNXRuntimeError] : ", "").rstrip(":") if lines else type(exc).__name__
    return line if len(line) <= limit else line[: limit - 3] + "..."
