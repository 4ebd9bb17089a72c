"""What ``rtseg batch`` reads: globs, folders, list files, video files and stream URLs.

Each input keeps the part of its path that names its output (``rel``): a glob's or a
folder's files keep their path below the glob's fixed prefix or the folder, so two
``clip.mp4`` in different folders get different outputs; loose files keep their path below
the folder they share; a stream is named by its host and path (never its credentials).

Example:
    >>> [i.rel.as_posix() for i in expand_inputs(["rtsp://user:pw@cam1:554/live/ch0"])]
    ['cam1_554/live/ch0']
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from rtseg.errors import SourceError
from rtseg.realtime.sources import is_url, resolve_source

# Files a folder or a glob contributes; a file named explicitly is taken whatever its suffix.
VIDEO_INPUT_SUFFIXES = (".mp4", ".mkv", ".mov", ".m4v", ".avi", ".webm", ".ts", ".mts", ".m2ts", ".flv",
                        ".wmv", ".mpg", ".mpeg", ".3gp", ".mxf")
# A positional argument with one of these suffixes is a list of inputs, one per line.
LIST_SUFFIXES = (".txt", ".lst", ".list")
GLOB_CHARS = "*?["


@dataclass(frozen=True)
class BatchInput:
    """One unit of work: a file or a stream.

    Attributes:
        source: what the single-file command would get as ``--source``.
        rel: the output's path below ``--out-dir``, without suffix.
        stream: a URL (runs until it ends or the batch is stopped).
    """

    source: str
    rel: PurePosixPath
    stream: bool = False

    @property
    def shown(self) -> str:
        """The source as printed and written to the manifest (a URL's password hidden)."""
        return redact(self.source) if self.stream else self.source


def expand_inputs(specs: Iterable[str], exclude: Path | None = None) -> list[BatchInput]:
    """Every input the specs name, in the order given (each file once).

    Args:
        specs: globs (``'videos/**/*.mp4'``, recursive), folders (searched recursively for
            :data:`VIDEO_INPUT_SUFFIXES`), list files (:data:`LIST_SUFFIXES`; entries relative
            to the list's folder, ``#`` comments), video files, URLs, or ``demo``.
        exclude: a folder whose files are never inputs (the output folder: a re-run must not
            take the previous run's outputs for inputs).

    Raises:
        SourceError: a file or folder that does not exist, a glob or folder without videos.
    """
    rooted: list[tuple[Path, Path]] = []  # (file, base its output path is relative to)
    loose: list[Path] = []
    streams: list[str] = []
    for spec in specs:
        _expand_one(spec, rooted, loose, streams, exclude, in_list=False)
    inputs: list[BatchInput] = []
    seen: set[str] = set()
    for path, base in [*rooted, *((p, _common_parent(loose)) for p in loose)]:
        key = os.path.normcase(os.path.realpath(path))
        if key not in seen:
            seen.add(key)
            rel = Path(_relative(path, base)).with_suffix("")
            inputs.append(BatchInput(str(path), PurePosixPath(rel.as_posix())))
    for url in dict.fromkeys(streams):
        inputs.append(BatchInput(url, stream_name(url), stream=True))
    return inputs


def _expand_one(spec: str, rooted: list, loose: list, streams: list, exclude: Path | None, in_list: bool) -> None:
    if is_url(spec):
        streams.append(spec)
    elif any(ch in spec for ch in GLOB_CHARS) and not Path(spec).exists():
        found = [Path(p) for p in sorted(glob.glob(spec, recursive=True)) if Path(p).is_file()]
        base = _glob_base(spec)
        found = [p for p in found if not _hidden_or_excluded(p, base, exclude)]
        if not found:
            raise SourceError(f"no files match {spec!r}")
        rooted.extend((p, base) for p in found)
    elif Path(spec).is_dir():
        found = sorted(p for p in Path(spec).rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_INPUT_SUFFIXES
                       and not _hidden_or_excluded(p, Path(spec), exclude))
        if not found:
            raise SourceError(f"no videos ({', '.join(VIDEO_INPUT_SUFFIXES)}) in folder {spec}")
        rooted.extend((p, Path(spec)) for p in found)
    elif Path(spec).suffix.lower() in LIST_SUFFIXES and not in_list:
        for entry in read_list(Path(spec)):
            _expand_one(entry, rooted, loose, streams, exclude, in_list=True)
    else:
        path = Path(str(resolve_source(spec)))
        if not path.is_file():
            raise SourceError(f"input not found: {spec}")
        loose.append(path)


def read_list(path: Path) -> list[str]:
    """The entries of a list file: one per line, blank lines and ``#`` comments skipped,
    relative paths taken relative to the list file's folder."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the list of inputs {path}: {exc}") from None
    entries = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    if not entries:
        raise SourceError(f"the list of inputs {path} is empty")
    return [e if is_url(e) or os.path.isabs(e) else os.path.join(path.parent, e) for e in entries]


def stream_name(url: str) -> PurePosixPath:
    """``rtsp://user:pw@cam1:554/live/ch0?token=x`` -> ``cam1_554/live/ch0`` (no credentials,
    no query string, no video suffix)."""
    parts = urlsplit(url)
    host = parts.hostname or "stream"
    if parts.port:
        host = f"{host}_{parts.port}"
    segments = [_safe(s) for s in parts.path.split("/") if s not in ("", ".", "..")]
    if segments and PurePosixPath(segments[-1]).suffix.lower() in VIDEO_INPUT_SUFFIXES:
        segments[-1] = PurePosixPath(segments[-1]).stem  # its suffix goes on the output, as for files
    return PurePosixPath(_safe(host), *(segments or ["stream"]))


def redact(url: str) -> str:
    """A URL with its password replaced by ``***``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def _safe(segment: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", segment).strip(".") or "_"


def _glob_base(spec: str) -> Path:
    """The folder before a glob's first wildcard: ``videos/**/*.mp4`` -> ``videos``."""
    fixed = []
    for part in Path(spec).parts:
        if any(ch in part for ch in GLOB_CHARS):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _common_parent(paths: list[Path]) -> Path:
    """The deepest folder holding all of ``paths``."""
    return Path(os.path.commonpath([os.path.abspath(p.parent) for p in paths])) if paths else Path(".")


def _relative(path: Path, base: Path) -> str:
    return os.path.relpath(os.path.abspath(path), os.path.abspath(base))


def _hidden_or_excluded(path: Path, base: Path, exclude: Path | None) -> bool:
    """Hidden files below ``base`` (rtseg's own temp files start with a dot) and files in ``exclude``."""
    if any(part.startswith(".") for part in Path(_relative(path, base)).parts if part != ".."):
        return True
    if exclude is None:
        return False
    try:
        Path(os.path.realpath(path)).relative_to(os.path.realpath(exclude))
    except ValueError:
        return False
    return True
