"""Read small YAML files from users safely: ``yaml.safe_load`` behind size and alias limits.

``safe_load`` never runs code, but anchors and aliases can still expand a few hundred bytes
into a structure with billions of nodes ("billion laughs"); printing it in an error message
alone costs megabytes. Configuration files here never need aliases, so they are refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from rtseg.errors import RtsegError, first_line

MAX_YAML_BYTES = 1 << 20


def load_yaml(path: str | os.PathLike, error: type[RtsegError] = RtsegError) -> Any:
    """Parse ``path`` with ``yaml.safe_load``; any problem is one ``error`` line naming the file.

    Example:
        >>> load_yaml("configs/train/camvid-road.yaml")["epochs"]  # doctest: +SKIP
        120
    """
    path = Path(path)
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise error(f"{path}: larger than {MAX_YAML_BYTES // 1024} KiB; not a configuration file")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise error(f"{path}: cannot read ({first_line(exc)})") from None
    except UnicodeDecodeError:
        raise error(f"{path}: not a UTF-8 text file") from None
    try:
        for event in yaml.parse(text, Loader=yaml.SafeLoader):
            if isinstance(event, yaml.AliasEvent):
                raise error(f"{path}: YAML aliases (*{event.anchor}) are not allowed in rtseg files")
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise error(f"{path}: invalid YAML ({first_line(exc, 120)})") from None
