"""The scripting API: `import simreal` is cheap and lazy, every exported name resolves, and a script's own
frames become a valid dataset through the writer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import simreal


def test_import_is_lazy_and_needs_no_renderer():
    code = (
        "import sys, simreal\n"
        "heavy = [m for m in ('numpy', 'embreex', 'torch', 'simreal.render', 'simreal.data') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "cfg = simreal.ColonoscopyConfig()\n"  # configs come without the ray caster
        "assert 'embreex' not in sys.modules\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_exported_name_resolves():
    for name in simreal.__all__:
        assert getattr(simreal, name) is not None, name
    assert set(simreal.__all__) <= set(dir(simreal))
    from simreal.anatomy.colon import make_colon

    assert simreal.procedural_colon is make_colon
    try:
        simreal.no_such_name
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("unknown names must raise AttributeError")


def test_a_script_writes_its_own_frames_as_a_dataset(tmp_path: Path):
    from simreal.render.tube import tube_mesh

    mesh = tube_mesh(radius=12.0, length=150.0, segments=48, rings=20, polyps=((75.0, 0.0, 5.0),))
    renderer = simreal.ColonoscopyRenderer(mesh, simreal.ColonoscopyConfig(normals=False))
    info = simreal.colonoscopy_dataset_info(16, normals=False, generator={"name": "test-script"}, seed=0)
    writer = simreal.DatasetWriter(tmp_path / "mine", info)
    rng = np.random.default_rng(0)
    frames = []
    for i in range(3):
        frame = renderer.render(renderer.sample(rng), size=16)
        writer.write(frame.record(f"{i:06d}", group="tube"), frame.arrays())
        frames.append(frame)
    out = writer.finish()
    report = simreal.validate_dataset(out)
    assert report.n_samples == 3 and report.kinds == ("image", "depth", "mask", "instance")
    records = simreal.DatasetReader(out).records
    # Every frame can be rendered again from its stored record.
    for frame, record in zip(frames, records):
        again = renderer.render(simreal.FrameParams.from_dict(record.params), size=16)
        assert again.image.tobytes() == frame.image.tobytes() and record.camera == frame.camera
