"""The dataset folder contract (``docs/dataset_format.md``): format, writer, reader, torch dataset,
readers for external data sets, where the real data live."""

from simreal.data.format import (
    SCHEMA,
    Camera,
    DatasetInfo,
    LabelKind,
    SampleRecord,
)
from simreal.data.reader import DatasetReader, validate_dataset
from simreal.data.writer import DatasetWriter

__all__ = [
    "SCHEMA",
    "Camera",
    "DatasetInfo",
    "DatasetReader",
    "DatasetWriter",
    "LabelKind",
    "SampleRecord",
    "validate_dataset",
]
