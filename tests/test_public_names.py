"""The packages' public names are functions, never the submodules beside them.

Regression: ``from rtseg.export import build`` gave the module rtseg/export/build.py, and once a
training run had imported rtseg/train/train.py, ``rtseg.train.train`` was that module, not the
function.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest

pytest.importorskip("torch")
pytest.importorskip("onnx")

PUBLIC_FUNCTIONS = {
    "rtseg.export": ("build", "export_model", "quantize_int8", "load_registry", "read_metadata"),
    "rtseg.train": ("train", "evaluate"),
    "rtseg.data": ("open_dataset", "parse_data_spec"),
    "rtseg.models": ("build_model",),
}


@pytest.mark.parametrize("package", PUBLIC_FUNCTIONS)
def test_public_names_stay_functions_after_every_submodule_is_imported(package):
    pkg = importlib.import_module(package)
    for sub in pkgutil.iter_modules(pkg.__path__, f"{package}."):
        importlib.import_module(sub.name)  # what an export or a training run does on the way
    for name in PUBLIC_FUNCTIONS[package]:
        namespace: dict = {}
        exec(f"from {package} import {name} as value", namespace)
        assert inspect.isfunction(namespace["value"]), f"{package}.{name} is {namespace['value']!r}"
        assert getattr(pkg, name) is namespace["value"]
    exported = [name for name in getattr(pkg, "__all__", ()) if inspect.ismodule(getattr(pkg, name))]
    assert exported == [], f"{package}.__all__ names modules: {exported}"


def test_user_facing_errors_live_in_rtseg_errors():
    from rtseg import errors
    from rtseg.data import DatasetError
    from rtseg.export import ExportError
    from rtseg.export.exporter import ExportError as raised_by_export

    assert ExportError is raised_by_export is errors.ExportError and DatasetError is errors.DatasetError
    for cls in (errors.ExportError, errors.DatasetError, errors.MissingExtraError):
        assert issubclass(cls, errors.RtsegError)
