"""Datasets and joint transforms for training and evaluation."""

from rtseg.data.datasets import KINDS, DatasetError, SegmentationDataset, open_dataset, parse_data_spec
from rtseg.data.transforms import EvalPreset, TrainPreset

__all__ = ["KINDS", "DatasetError", "SegmentationDataset", "open_dataset", "parse_data_spec",
           "EvalPreset", "TrainPreset"]
