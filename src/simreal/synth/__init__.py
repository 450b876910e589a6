"""UM-synthesis inputs (methods.md 3): CT volumes as slice datasets, unsupervised superpixel guidance.

- :mod:`simreal.synth.prepare`: CT (NIfTI / DICOM) + labels -> axial slices or 2x2 montages in HU, an 8-bit
  windowed image and class masks, one patient per ``group``; patient-level splits.
- :mod:`simreal.synth.sources`: label volumes in the collections' layouts (NIfTI, DICOM mask series,
  per-slice PNG masks).
- :mod:`simreal.synth.masks`: SLIC superpixels, mean fill, quantisation and edge maps (the guidance).
- :mod:`simreal.synth.um`: the mask-guided multi-task generator (CT + segmentation), semi-supervised with
  D-masked teacher pseudo-labels, on the adversarial engine (``train_synth``); configs in
  :mod:`simreal.synth.um_config`, batches in :mod:`simreal.synth.data`.
- :mod:`simreal.synth.sample`: new image + mask pairs from a trained run, from perturbed guidance.
- :mod:`simreal.synth.memorisation`: nearest-training-slice distances of samples vs real unseen slices.

The torch-based names (``train_synth``, ``sample_from_run``, ``memorisation_check``, ...) load on first use.

The image-set metrics of the paper (MM-FID, MM-STD) live in :mod:`simreal.metrics.mmfid`.
"""

import importlib
from typing import Any

from simreal.synth.masks import MaskConfig, make_mask_dataset, unsupervised_mask
from simreal.synth.prepare import CTCase, PrepareConfig, patient_split, prepare_ct_dataset, window_to_uint8

#: Public name -> (module, attribute), imported on first access (they pull in torch).
_LAZY: dict[str, tuple[str, str]] = {
    "SynthRunConfig": ("simreal.synth.um_config", "SynthRunConfig"),
    "SynthDataConfig": ("simreal.synth.um_config", "SynthDataConfig"),
    "UMConfig": ("simreal.synth.um_config", "UMConfig"),
    "MaskGuidedSynthesis": ("simreal.synth.um", "MaskGuidedSynthesis"),
    "ManualMaskSynthesis": ("simreal.synth.um", "ManualMaskSynthesis"),
    "train_synth": ("simreal.synth.um", "train_synth"),
    "PerturbConfig": ("simreal.synth.sample", "PerturbConfig"),
    "sample_from_run": ("simreal.synth.sample", "sample_from_run"),
    "sample_dataset": ("simreal.synth.sample", "sample_dataset"),
    "memorisation_check": ("simreal.synth.memorisation", "memorisation_check"),
    "memorisation_from_run": ("simreal.synth.memorisation", "memorisation_from_run"),
}

__all__ = [
    "CTCase",
    "MaskConfig",
    "PrepareConfig",
    "make_mask_dataset",
    "patient_split",
    "prepare_ct_dataset",
    "unsupervised_mask",
    "window_to_uint8",
    *sorted(_LAZY),
]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'simreal.synth' has no attribute {name!r}") from None
    return getattr(importlib.import_module(module), attr)
