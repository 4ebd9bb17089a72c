"""Draw instances: each object tinted and outlined in its own shade of its class colour, with
its box, class, ID (and score) and, with a counting line, the line and its tallies."""

from __future__ import annotations

import cv2
import numpy as np

from rtseg.realtime.instances.records import FrameInstances, Instance

FONT = cv2.FONT_HERSHEY_SIMPLEX
LINE_COLOR = (0, 220, 255)  # BGR, amber


def shade(color: np.ndarray, track_id: int | None) -> tuple[int, int, int]:
    """A BGR colour near the class colour, different for neighbouring IDs (hue and brightness)."""
    if track_id is None:
        return tuple(int(c) for c in color)
    hsv = cv2.cvtColor(np.uint8(color).reshape(1, 1, 3), cv2.COLOR_BGR2HSV)[0, 0].astype(int)
    hue = (hsv[0] + (track_id * 23) % 40 - 20) % 180
    value = 110 + (track_id * 53) % 146
    saturation = max(hsv[1], 140)
    bgr = cv2.cvtColor(np.uint8([[[hue, saturation, value]]]), cv2.COLOR_HSV2BGR)[0, 0]
    return tuple(int(c) for c in bgr)


class InstanceAnnotator:
    """Annotator for a frame's :class:`FrameInstances`; draws in place.

    Args:
        lut: 256 x 3 BGR class colours (the renderer's).
        alpha: tint of each instance's pixels in its shade.
        panel: also draw the counts (now / seen, crossings) in the bottom-left corner; the
            renderer turns it off when the HUD shows them.

    Only each instance's bounding box is touched, so the cost grows with the objects' area, not
    the frame's.

    Example:
        >>> from rtseg.realtime.instances.records import Instance
        >>> inst = Instance.from_mask(1, "car", np.ones((6, 6), bool), (2, 2)); inst.id = 3
        >>> lut = np.zeros((256, 3), np.uint8); lut[1] = (0, 0, 255)
        >>> out = InstanceAnnotator(lut).annotate(np.zeros((40, 60, 3), np.uint8), FrameInstances([inst]))
        >>> bool(out[4, 4].any())
        True
    """

    def __init__(self, lut: np.ndarray, alpha: float = 0.35, panel: bool = True, scale: float = 0.45) -> None:
        self.lut, self.alpha, self.panel, self.scale = lut, alpha, panel, scale

    def annotate(self, image: np.ndarray, instances: FrameInstances | None, frame_width: int | None = None,
                 visible: np.ndarray | None = None) -> np.ndarray:
        """Draw ``instances`` on ``image``; with a wider image (side by side), on its right-most
        panel; with ``visible`` (256 bools), only instances of visible classes."""
        if instances is None:
            return image
        offset = image.shape[1] - frame_width if frame_width else 0
        target = image[:, offset:] if offset > 0 else image
        for inst in instances.instances:
            if visible is None or visible[inst.class_index]:
                self._draw(target, inst)
        if instances.line is not None:
            self._draw_line(target, instances)
        if self.panel:
            self._draw_panel(target, instances.summary_lines())
        return image

    def _draw(self, image: np.ndarray, inst: Instance) -> None:
        x0, y0, x1, y1 = inst.box
        color = shade(self.lut[inst.class_index], inst.id)
        crop = image[y0:y1, x0:x1]
        if crop.shape[:2] != inst.mask.shape:
            return  # drawn on an image of another size: skip rather than fail
        tinted = cv2.addWeighted(crop, 1.0 - self.alpha, np.full_like(crop, color), self.alpha, 0.0)
        crop[inst.mask] = tinted[inst.mask]
        contours, _ = cv2.findContours(inst.mask.view(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(crop, contours, -1, color, 2 if inst.id is not None else 1, cv2.LINE_AA)
        if inst.id is None and inst.score is None:
            return  # tentative: outlined only
        cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), color, 1)
        text = inst.class_name if inst.id is None else f"{inst.class_name} {inst.id}"
        if inst.score is not None:
            text += f" {inst.score:.2f}"
        self._tag(image, text, (x0, y0), color)

    def _tag(self, image: np.ndarray, text: str, corner: tuple[int, int], color: tuple[int, int, int]) -> None:
        (tw, th), base = cv2.getTextSize(text, FONT, self.scale, 1)
        x = min(max(0, corner[0]), max(0, image.shape[1] - tw - 4))
        y = corner[1] - th - base - 2 if corner[1] - th - base - 2 >= 0 else corner[1]
        cv2.rectangle(image, (x, y), (x + tw + 4, y + th + base + 2), color, -1)
        ink = (0, 0, 0) if sum(color) > 380 else (255, 255, 255)
        cv2.putText(image, text, (x + 2, y + th + 1), FONT, self.scale, ink, 1, cv2.LINE_AA)

    def _draw_line(self, image: np.ndarray, instances: FrameInstances) -> None:
        (x1, y1, x2, y2), directions = instances.line
        cv2.line(image, (x1, y1), (x2, y2), LINE_COLOR, 2, cv2.LINE_AA)
        flash = {c["direction"] for c in instances.crossed}
        totals = instances.crossings or {}
        mid = np.array([(x1 + x2) / 2, (y1 + y2) / 2])
        axis = np.array([0.0, 1.0]) if directions[0] == "down" else np.array([1.0, 0.0])
        for sign, direction in ((1, directions[0]), (-1, directions[1])):
            tip = mid + sign * 22 * axis
            color = (255, 255, 255) if direction in flash else LINE_COLOR
            cv2.arrowedLine(image, tuple(int(v) for v in mid), tuple(int(v) for v in tip), color, 2,
                            cv2.LINE_AA, tipLength=0.4)
            count = sum(totals.get(direction, {}).values())
            label_at = tip + (np.array([6, 14 if sign > 0 else -4]) if directions[0] == "down"
                              else np.array([-10 if sign < 0 else 4, -8]))
            self._tag(image, f"{direction} {count}", (int(label_at[0]), int(label_at[1])), color)

    def _draw_panel(self, image: np.ndarray, lines: list[str]) -> None:
        if not lines:
            return
        step = int(20 * self.scale / 0.5)
        width = max(cv2.getTextSize(t, FONT, self.scale, 1)[0][0] for t in lines) + 12
        height = step * len(lines) + 8
        h = image.shape[0]
        box = image[max(0, h - height):, :width]
        box[:] = (box * 0.35).astype(np.uint8)
        for row, text in enumerate(lines):
            cv2.putText(image, text, (6, h - height + step * (row + 1)), FONT, self.scale, (255, 255, 255), 1,
                        cv2.LINE_AA)
