"""``rtseg models``: registry entries, built-in architectures and models, exported files.

Examples:
    rtseg models                 # everything
    rtseg models --cache ~/m     # exported files in another cache folder
    rtseg models --registry DIR  # also the registry entries (*.yaml) in DIR
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from rtseg.errors import RtsegError, first_line

log = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The ``rtseg models`` argument parser."""
    p = argparse.ArgumentParser(prog="rtseg models", description=__doc__.split("\n\n")[0],
                                epilog="\n".join(__doc__.split("\n")[2:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, help="folder of exported models (default: $RTSEG_CACHE/models)")
    p.add_argument("--registry", action="append", type=Path, metavar="DIR",
                   help="also list registry entries (*.yaml) from DIR; built-in entries win on equal names")
    p.add_argument("--debug", action="store_true", help="verbose logs and full tracebacks")
    return p


def _size(size) -> str:
    return f"{size[0]}x{size[1]}" if size else "any"


def _classes(classes) -> str:
    shown = ", ".join(classes[:4])
    return f"{len(classes)} ({shown}{', ...' if len(classes) > 4 else ''})"


def registry_rows(user_dirs: list[Path] | None = None) -> list[tuple[str, ...]]:
    """(name, arch, classes, input size, weights) per registry entry (built-ins, then ``user_dirs``)."""
    from rtseg.export.registry import WEIGHT_KINDS, load_registry

    rows = []
    for spec in load_registry(user_dirs or ()).values():
        kind = next((k for k in WEIGHT_KINDS if k in spec.weights), "none")
        weights = f"{kind}: {spec.weights[kind]}" if kind != "none" else "none (random init)"
        rows.append((spec.name, spec.arch, _classes(spec.info.classes), _size(spec.info.input_size), weights))
    return rows


def builtin_arch_rows() -> list[tuple[str, ...]]:
    """(name, family) per architecture export can build; empty without the export extra."""
    try:
        from rtseg.export.builder import builtin_names
    except ImportError as exc:
        log.info("built-in architectures need the export extra (pip install rtseg[export]): %s", exc)
        return []
    return [(name, full.split(":")[0]) for name, full in builtin_names().items()]


def onnx_rows(paths: list[Path]) -> list[tuple[str, ...]]:
    """(file, name, classes, input size, output, precision) read from each file's metadata."""
    import onnxruntime as ort

    from rtseg.contract import ModelInfo
    from rtseg.realtime.session import session_options

    rows = []
    for path in paths:
        try:
            session = ort.InferenceSession(str(path), session_options(), providers=["CPUExecutionProvider"])
            info, _ = ModelInfo.from_metadata(session.get_modelmeta().custom_metadata_map, name=path.stem)
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not hide the others
            rows.append((str(path), "?", f"unreadable: {first_line(exc, 60)}", "", "", ""))
            continue
        rows.append((str(path), info.name, _classes(info.classes), _size(info.input_size), info.output,
                     info.extra.get("precision", "?")))
    return rows


def print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """Print an aligned plain-text table (CLI output)."""
    print(f"\n{title}")
    if not rows:
        print("  (none)")
        return
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  " + "  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())


def run(args: argparse.Namespace) -> int:
    """Print the tables; returns 0."""
    from rtseg.cache import models_dir
    from rtseg.export.registry import registry_dirs

    folders = ", ".join(str(d) for d in registry_dirs(args.registry or ()))
    print_table(f"Registry ({folders}; rtseg export NAME)", ("name", "arch", "classes", "input", "weights"),
                registry_rows(args.registry))
    print_table("Architectures (rtseg export NAME --weights FILE)", ("name", "family"), builtin_arch_rows())
    from rtseg.assets import ASSETS, builtin_model_files

    print_table(f"Built-in models ({ASSETS}; run with --model NAME)",
                ("file", "name", "classes", "input", "output", "precision"),
                onnx_rows(list(builtin_model_files().values()))
                + [("otsu", "otsu", "2 (background, foreground)", "frame", "labels", "no weights")])
    cache = args.cache or models_dir()
    if args.cache and not cache.is_dir():
        raise RtsegError(f"--cache {cache}: not a folder")
    print_table(f"Exported models ({cache}; run with --model NAME)",
                ("file", "name", "classes", "input", "output", "precision"),
                onnx_rows(sorted(cache.glob("*.onnx")) if cache.is_dir() else []))
    return 0
