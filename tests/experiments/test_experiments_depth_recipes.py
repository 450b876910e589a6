"""`simreal experiment depth-recipes --scale smoke`: recipes are chosen on validation colons, never on test."""

from __future__ import annotations

import json
from pathlib import Path

from simreal_testing import run_simreal as simreal


def test_recipes_are_chosen_on_validation_only(tmp_path: Path) -> None:
    out = tmp_path / "recipes"
    done = simreal("experiment", "depth-recipes", "--scale", "smoke", "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    rows = results["tables"][0]["rows"]
    assert len(rows) == 4 and all(r["n_groups"] == 1 and r["n_frames"] == 24 for r in rows)  # the validation colon
    best = min(rows, key=lambda r: r["val abs_rel (median-scaled)"])
    assert results["metrics"]["chosen"] == best["recipe"]
    assert sorted(p.name for p in (out / "data").iterdir()) == ["synth_train", "synth_val"]  # no test colon rendered
    for run in (out / "runs").iterdir():
        cfg = json.loads((run / "config.json").read_text())
        assert cfg["data"]["val"].endswith("synth_val")
