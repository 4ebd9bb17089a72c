"""rtseg: real-time video semantic segmentation.

Example:
    >>> import rtseg
    >>> engine = rtseg.load_model("otsu")            # or a path to an .onnx model
    >>> labels = engine(image)                       # doctest: +SKIP
    >>> rtseg.process("in.mp4", "out.mp4")           # doctest: +SKIP
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("rtseg")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["load_model", "process", "__version__"]


def __getattr__(name: str):
    # Lazy: `import rtseg` stays cheap, and export/training code never pulls in the runtime.
    if name == "load_model":
        from rtseg.realtime.engine import load_model

        return load_model
    if name == "process":
        from rtseg.realtime.app import process

        return process
    raise AttributeError(f"module 'rtseg' has no attribute {name!r}")
