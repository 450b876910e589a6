"""simreal: deep learning with synthetic medical images.

The package is laid out as the pipeline it implements::

    anatomy -> render -> data (the dataset folder contract) -> train (tasks, nets) -> metrics -> experiments
"""

__version__ = "0.1.0"

from simreal.errors import SimrealError

__all__ = ["SimrealError", "__version__"]
