"""The browser preview (``--serve [HOST:]PORT``): the annotated stream as MJPEG on a small
local web page, with the run's figures and live controls.

* :mod:`.hub` fans one JPEG per frame out to every viewer (a slow viewer drops frames);
* :mod:`.server` is the HTTP server: its routes, the Host and token checks, the stream loop;
* :mod:`.sink` is the :class:`PreviewSink` the render thread writes to;
* :mod:`.status` is what ``/status.json`` reports about a run.
"""

from rtseg.realtime.preview.sink import PreviewSink
from rtseg.realtime.preview.status import preview_status

__all__ = ["PreviewSink", "preview_status"]
