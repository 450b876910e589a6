"""The laparoscopy class table (Pfeiffer et al.'s 8 classes, as ids) and the grey-value encodings of label
files: the recorded lists exactly as methods.md gives them, no class pairing claimed, exact round trips."""

from __future__ import annotations

import numpy as np
import pytest

from simreal.anatomy import abdomen_classes as ac
from simreal.errors import SimrealError
from simreal.render.laparoscopy_run import laparoscopy_dataset_info


def test_class_table_is_pfeiffers_eight_classes_in_order():
    assert ac.LAPAROSCOPY_CLASSES == {
        0: "background", 1: "liver", 2: "fat", 3: "abdominal_wall", 4: "ligament", 5: "tool_shaft", 6: "tool_tip",
        7: "gallbladder",
    }
    assert (ac.BACKGROUND, ac.LIVER, ac.FAT, ac.WALL, ac.LIGAMENT, ac.TOOL_SHAFT, ac.TOOL_TIP, ac.GALLBLADDER) == tuple(range(8))
    assert list(ac.PFEIFFER_CLASS_NAMES.values()) == [
        "Background", "Liver", "Fat", "Diaphragm/abdominal wall", "Ligament", "Tool shaft", "Tool tip", "Gallbladder"]
    # What every rendered dataset declares (dataset.json labels.mask.classes).
    assert laparoscopy_dataset_info(16).labels["mask"].classes == ac.LAPAROSCOPY_CLASSES
    assert laparoscopy_dataset_info(16).modality == "laparoscopy"


def test_recorded_grey_lists_are_the_disputed_sources_verbatim():
    assert ac.PFEIFFER_GITLAB_GREYS == (0, 89, 170, 149, 188, 218, 203, 124)
    assert ac.MML_OBSERVED_GREYS == (26, 51, 77, 102, 128, 153, 179)
    assert len(ac.MML_OBSERVED_GREYS) == 7  # seven values for eight classes: no complete encoding
    assert ac.MML_OBSERVED_GREYS == tuple(int(np.floor(k * 25.5 + 0.5)) for k in range(1, 8))
    # No pairing is claimed: building an encoding is explicit and unverified.
    enc = ac.grey_encoding(ac.PFEIFFER_GITLAB_GREYS, name="gitlab-positional")
    assert enc.verified is False and enc.greys[7] == 124


@pytest.mark.parametrize("values,order", [
    (ac.PFEIFFER_GITLAB_GREYS, None),
    (ac.MML_OBSERVED_GREYS, [1, 2, 3, 4, 5, 6, 7]),   # a user-chosen pairing (background unencoded)
    ((0, 10, 20, 30, 40, 50, 60, 70), [7, 6, 5, 4, 3, 2, 1, 0]),
])
def test_encode_decode_round_trip(values, order):
    enc = ac.grey_encoding(values, order=order)
    ids = sorted(enc.greys)
    mask = np.array(ids * 3, np.uint8).reshape(3, len(ids))
    grey = ac.encode_classes(mask, enc)
    assert grey.dtype == np.uint8
    assert [enc.grey_of(int(k)) for k in mask[0]] == grey[0].tolist()
    assert np.array_equal(ac.decode_classes(grey, enc), mask)
    every = np.arange(256, dtype=np.uint8)[None]
    known = np.isin(every, list(enc.greys.values()))
    assert np.array_equal(ac.encode_classes(ac.decode_classes(every[known][None], enc), enc), every[known][None])


def test_decoding_unknown_greys_and_encoding_unencoded_classes_raise(tmp_path):
    enc = ac.grey_encoding(ac.MML_OBSERVED_GREYS, order=range(1, 8))
    with pytest.raises(SimrealError, match="classes \\[0\\] have no grey"):
        ac.encode_classes(np.zeros((2, 2), np.uint8), enc)
    bad = tmp_path / "lbl0.png"
    with pytest.raises(SimrealError) as err:
        ac.decode_classes(np.array([[26, 27]], np.uint8), enc, source=bad)
    assert str(bad) in str(err.value) and "27" in str(err.value)
    # A tolerance absorbs small shifts (resampled label files) but may not merge two classes.
    assert ac.decode_classes(np.array([[27, 50]], np.uint8), enc, tolerance=2).tolist() == [[1, 2]]
    with pytest.raises(SimrealError, match="overlap"):
        ac.decode_classes(np.array([[26]], np.uint8), enc, tolerance=13)


@pytest.mark.parametrize("greys,match", [
    ({0: 1, 1: 1}, "share a grey"), ({8: 3}, "not one of 0..7"), ({0: 256}, "not in 0..255"),
])
def test_invalid_encodings_raise(greys, match):
    with pytest.raises(SimrealError, match=match):
        ac.GreyEncoding(greys)
    with pytest.raises(SimrealError, match="grey values but"):
        ac.grey_encoding([1, 2, 3], order=[0, 1])
