"""rtseg: real-time video semantic segmentation."""

__version__ = "0.1.0"
