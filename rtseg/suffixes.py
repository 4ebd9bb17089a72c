"""File-name suffixes rtseg reads as still images (shared by sources, outputs, data sets and export)."""

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
