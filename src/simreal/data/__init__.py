"""The dataset folder contract (DESIGN.md, contract 1): format, writer, reader, torch dataset, readers
for external data sets."""

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
