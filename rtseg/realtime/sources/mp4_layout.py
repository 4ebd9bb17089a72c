"""Why an MP4/MOV file cannot be opened, in words: its top-level boxes say it.

FFmpeg answers a truncated MP4 with "Invalid data found" or an empty stream list; the
reason is almost always that the index (the ``moov`` box, written last by most recorders)
is missing because the file was cut or is still being written.
"""

from __future__ import annotations

import struct
from pathlib import Path

MP4_SUFFIXES = (".mp4", ".mov", ".m4v", ".3gp")


def mp4_problem(path: str | Path) -> str | None:
    """A short explanation when an MP4/MOV file's box layout is cut or has no index, else None."""
    path = Path(path)
    if path.suffix.lower() not in MP4_SUFFIXES or not path.is_file():
        return None
    size, pos, seen = path.stat().st_size, 0, set()
    with open(path, "rb") as file:
        while pos + 8 <= size:
            file.seek(pos)
            box_size, kind = struct.unpack(">I4s", file.read(8))
            if box_size == 1:
                box_size = struct.unpack(">Q", file.read(8))[0]
            elif box_size == 0:
                box_size = size - pos
            if box_size < 8:
                return "its box structure is damaged"
            seen.add(kind)
            if pos + box_size > size:
                name = kind.decode("latin-1", "replace")
                if b"moov" not in seen:
                    return f"no moov atom (the file's index): it is truncated, cut inside its '{name}' box"
                return f"the file is truncated: it ends inside its '{name}' box"
            pos += box_size
    if b"moov" not in seen and b"moof" not in seen:
        return "no moov atom (the file's index): the file is truncated or still being written"
    return None
