"""The one shape every drawing step has (in the style of supervision's annotators)."""

from __future__ import annotations

from typing import Protocol

import numpy as np


class Annotator(Protocol):
    """Draws on an image given the frame's label map.

    ``annotate`` returns the annotated image; each annotator's docstring says whether it
    draws in place (legend, HUD) or returns a new image (the views).
    """

    def annotate(self, image: np.ndarray, labels: np.ndarray) -> np.ndarray: ...
