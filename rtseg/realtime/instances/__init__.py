"""Instances, tracks and counts: objects of the thing classes found, followed and counted.

``--instances`` splits the thing classes of a semantic model's label map into objects
(:mod:`.components`), keeps an ID on each across frames (:mod:`.tracker`), counts crossings of
``--count-line`` (:mod:`.counting`) and draws them (:mod:`.annotator`). :mod:`.stage` runs the
three once per frame and puts one :class:`FrameInstances` record on the Frame.
"""

from rtseg.realtime.instances.records import FrameInstances, Instance, thing_classes

__all__ = ["FrameInstances", "Instance", "thing_classes"]
