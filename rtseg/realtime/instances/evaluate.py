"""Instance counts of a model against ground truth: the same rule applied to both label maps.

CamVid has no instance annotations, so "ground-truth instances" are the connected
components of its label maps under the same rule (thing classes, minimum area, split) as the
model's. The error therefore measures how well the model's label map reproduces the counts,
not whether the rule finds every object (cars touching in the image are one component in
both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np

from rtseg.realtime.instances.components import find_instances


@dataclass
class CountErrors:
    """Per-class count differences over images, model minus truth.

    Example:
        >>> errors = CountErrors(["car"])
        >>> errors.add({"car": 3}, {"car": 2}); errors.add({"car": 1}, {"car": 1})
        >>> errors.table()["car"]["mae"], errors.table()["car"]["bias"]
        (0.5, 0.5)
    """

    classes: list[str]
    predicted: dict[str, list[int]] = field(default_factory=dict)
    truth: dict[str, list[int]] = field(default_factory=dict)

    def add(self, predicted: Mapping[str, int], truth: Mapping[str, int]) -> None:
        for name in self.classes:
            self.predicted.setdefault(name, []).append(int(predicted.get(name, 0)))
            self.truth.setdefault(name, []).append(int(truth.get(name, 0)))

    def table(self) -> dict[str, dict[str, float]]:
        """class -> images, mean true count, mean predicted count, MAE, bias, exact-match share."""
        rows = {}
        for name in self.classes:
            p, t = np.array(self.predicted.get(name, []), float), np.array(self.truth.get(name, []), float)
            if not len(t):
                continue
            rows[name] = {"images": len(t), "true_mean": round(float(t.mean()), 3),
                          "predicted_mean": round(float(p.mean()), 3),
                          "mae": round(float(np.abs(p - t).mean()), 3), "bias": round(float((p - t).mean()), 3),
                          "exact": round(float((p == t).mean()), 3)}
        return rows


def counts(labels: np.ndarray, things: Mapping[int, str], min_area: int | None, split: bool) -> dict[str, int]:
    """Instances per thing class in one label map."""
    found = {name: 0 for name in things.values()}
    for inst in find_instances(labels, things, min_area, split):
        found[inst.class_name] += 1
    return found


def compare_counts(pairs: Iterable[tuple[np.ndarray, np.ndarray]], things: Mapping[int, str],
                   min_area: int | None = None, split: bool = False) -> CountErrors:
    """(predicted labels, true labels) pairs -> :class:`CountErrors` under one rule."""
    errors = CountErrors(list(things.values()))
    for predicted, truth in pairs:
        errors.add(counts(predicted, things, min_area, split), counts(truth, things, min_area, split))
    return errors
