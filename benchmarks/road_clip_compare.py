"""Two road models on the demo dash-cam clip: the known errors counted, one frame side by side.

Not a test. The clip has no labels, so this counts what the issue names as obvious errors,
in the image regions where they are obvious on this clip (a highway under a clear sky, grass
shoulders, hills on the horizon):

- sign in the sky: pixels labelled ``sign`` in the top 35 % of the frame;
- building on the horizon: pixels labelled ``building`` in the top 55 % (there are none);
- sidewalk anywhere: there is no sidewalk on this highway.

Each is the mean share of the frame over every frame of the clip. It also writes one frame
(default 100, the issue's) with both models' overlays side by side for the model card.

    python benchmarks/road_clip_compare.py --before camvid-road --after runs/final/model.onnx \
        --image docs/images/road-before-after.jpg
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from rtseg.realtime.engine import load_model
from rtseg.realtime.options import RenderOptions
from rtseg.realtime.render import Renderer
from rtseg.realtime.sources import VideoSource, resolve_source

# (name, class, top share of the frame where the class counts as an error)
ERRORS = (("sign in the sky", "sign", 0.35), ("building on the horizon", "building", 0.55),
          ("sidewalk anywhere", "sidewalk", 1.0))


def error_shares(labels: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    """Share of the frame's pixels in each :data:`ERRORS` region that carry that class."""
    h = labels.shape[0]
    shares = {}
    for name, cls, top in ERRORS:
        if cls not in classes:
            continue
        region = labels[: max(1, round(h * top))]
        shares[name] = float(np.count_nonzero(region == classes.index(cls))) / labels.size
    return shares


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", default="camvid-road")
    p.add_argument("--after", required=True)
    p.add_argument("--source", default="demo")
    p.add_argument("--frame", type=int, default=100, help="frame for the side-by-side image (100)")
    p.add_argument("--image", help="write the side-by-side frame here (JPEG/PNG)")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args(argv)
    models = {"before": load_model(args.before, threads=args.threads),
              "after": load_model(args.after, threads=args.threads)}
    totals = {key: {} for key in models}
    picture = {}
    count = 0
    with VideoSource(str(resolve_source(args.source))) as src:
        for frame in src:
            for key, engine in models.items():
                engine.segment(frame)
                for name, share in error_shares(frame.labels, engine.info.classes).items():
                    totals[key][name] = totals[key].get(name, 0.0) + share
                if frame.index == args.frame:
                    options = RenderOptions(legend=key == "after", hud=False)
                    picture[key] = Renderer(engine.info, options).render(frame).copy()
            count += 1
    print(f"| error on {args.source} ({count} frames), mean % of the frame | {args.before} | {args.after} |")
    print("|---|---:|---:|")
    for name, _, _ in ERRORS:
        cells = [f"{100 * totals[k].get(name, float('nan')) / count:.2f}" for k in models]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    if args.image and len(picture) == 2:
        images = [picture[k] for k in models]
        for image, text in zip(images, (args.before, args.after)):
            cv2.putText(image, text, (12, image.shape[0] - 16), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (255, 255, 255), 2)
        cv2.imwrite(args.image, np.hstack(images), [cv2.IMWRITE_JPEG_QUALITY, 85])
        print(f"wrote {args.image}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
