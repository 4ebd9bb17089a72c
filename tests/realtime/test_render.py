import numpy as np
import pytest

from rtseg.contract import ModelInfo
from rtseg.errors import RtsegError
from rtseg.realtime.controls import Controls
from rtseg.realtime.frame import Frame
from rtseg.realtime.options import RenderOptions
from rtseg.realtime.render import Renderer

INFO = ModelInfo(name="t", classes=("void", "road", "car"), palette=((0, 0, 0), (128, 64, 128), (0, 0, 255)))


def _frame() -> Frame:
    image = np.full((4, 6, 3), 100, np.uint8)
    labels = np.array([[0, 0, 1, 1, 2, 2]] * 4, np.uint8)
    return Frame(image, 0, labels=labels)


def test_mask_view_is_the_palette_in_bgr() -> None:
    out = Renderer(INFO, RenderOptions(view="mask")).render(_frame())
    assert out[0, 0].tolist() == [0, 0, 0]
    assert out[0, 2].tolist() == [128, 64, 128]
    assert out[0, 4].tolist() == [255, 0, 0]  # RGB (0,0,255) -> BGR


def test_overlay_blends_with_alpha_and_hidden_classes_show_the_image() -> None:
    frame = _frame()
    out = Renderer(INFO, RenderOptions(view="overlay", alpha=0.25, hide=["void"])).render(frame)
    assert out[0, 0].tolist() == [100, 100, 100]  # void hidden: original pixels
    expected = np.round(0.75 * 100 + 0.25 * np.array([128, 64, 128])).tolist()
    assert out[0, 2].tolist() == expected
    assert frame.image[0, 2].tolist() == [100, 100, 100]  # input untouched
    assert "render" in frame.timings


def test_classes_keeps_only_the_named_ones() -> None:
    out = Renderer(INFO, RenderOptions(view="mask", classes=["car"])).render(_frame())
    assert out[0, 2].tolist() == [0, 0, 0] and out[0, 4].tolist() == [255, 0, 0]


def test_side_by_side_is_three_panels() -> None:
    out = Renderer(INFO, RenderOptions(view="side-by-side")).render(_frame())
    assert out.shape == (4, 18, 3)
    assert out[0, 6 + 4].tolist() == [255, 0, 0]  # middle panel is the mask


def test_contours_mark_only_boundaries() -> None:
    frame = Frame(np.full((9, 9, 3), 100, np.uint8), 0, labels=np.zeros((9, 9), np.uint8))
    frame.labels[3:6, 3:6] = 2
    out = Renderer(INFO, RenderOptions(view="contours")).render(frame)
    assert out[0, 0].tolist() == [100, 100, 100]
    assert out[4, 4].tolist() == [100, 100, 100]  # interior of the square is not drawn
    assert out[3, 3].tolist() == [255, 0, 0]


def test_legend_and_hud_draw_something() -> None:
    frame = Frame(np.zeros((120, 200, 3), np.uint8), 0, labels=np.zeros((120, 200), np.uint8))
    plain = Renderer(INFO, RenderOptions(view="overlay", alpha=0.0)).render(frame)
    drawn = Renderer(INFO, RenderOptions(alpha=0.0, legend=True), hud_lines=lambda: ["fps 10"]).render(frame)
    assert not plain.any()
    assert drawn[:20, :60].any() and drawn[:20, -60:].any()  # HUD top-left, legend top-right


def test_unknown_class_name_is_a_clear_error() -> None:
    with pytest.raises(RtsegError, match="unknown class 'tree'.*void, road, car"):
        Renderer(INFO, RenderOptions(hide=["tree"]))


def test_controls_cycle_views_and_the_renderer_follows_them_live() -> None:
    controls = Controls()
    assert [controls.next_view() for _ in range(4)] == ["mask", "side-by-side", "contours", "overlay"]
    with pytest.raises(ValueError, match="view mode"):
        Controls("nope")
    renderer = Renderer(INFO, controls=controls)
    assert renderer.render(_frame()).shape == (4, 6, 3)
    controls.set_view("side-by-side")
    assert renderer.render(_frame()).shape == (4, 18, 3)
    controls.set_view("mask")
    controls.set_alpha(1.0)
    assert renderer.render(_frame())[0, 4].tolist() == [255, 0, 0]


def test_hud_is_off_when_the_options_say_so() -> None:
    frame = Frame(np.zeros((60, 100, 3), np.uint8), 0, labels=np.zeros((60, 100), np.uint8))
    out = Renderer(INFO, RenderOptions(alpha=0.0, hud=False), hud_lines=lambda: ["fps 10"]).render(frame)
    assert not out.any()


def test_every_annotator_has_the_same_shape() -> None:
    """Views, legend and HUD all take (image, labels) and return an image."""
    from rtseg.realtime.render.hud import Hud
    from rtseg.realtime.render.legend import Legend
    from rtseg.realtime.render.palette import color_lut
    from rtseg.realtime.render.views import VIEW_MODES, make_view

    lut, visible = color_lut(INFO), np.ones(256, bool)
    frame = _frame()
    annotators = [make_view(m, lut, visible, 0.5) for m in VIEW_MODES]
    annotators += [Legend(INFO, lut, visible), Hud(lambda: ["x"])]
    for annotator in annotators:
        out = annotator.annotate(frame.image.copy(), frame.labels)
        assert out.dtype == np.uint8 and out.ndim == 3


def test_hidden_classes_change_live_through_controls() -> None:
    controls = Controls(view="mask")
    renderer = Renderer(INFO, controls=controls)
    assert renderer.render(_frame())[0, 4].tolist() == [255, 0, 0]
    controls.set_hidden({2})
    assert renderer.render(_frame())[0, 4].tolist() == [0, 0, 0]
    controls.set_hidden(set())
    assert renderer.render(_frame())[0, 4].tolist() == [255, 0, 0]
    with pytest.raises(ValueError, match="0..255"):
        controls.set_hidden({300})
