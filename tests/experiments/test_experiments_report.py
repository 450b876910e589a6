"""The HTML report: self-contained, rebuilt from results.json alone."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from simreal.errors import SimrealError
from simreal.experiments.report import write_report


def test_report_embeds_figures_and_tables(tmp_path: Path) -> None:
    (tmp_path / "figures").mkdir()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "figures" / "a.png")
    results = {
        "name": "demo", "scale": "smoke", "notes": ["a <note>"],
        "targets": [{"target": "abs_rel", "value": 0.2, "threshold": "<= 0.1", "met": False}],
        "tables": [{"title": "T", "columns": ["set", "dice", "n"], "rows": [{"set": "x", "dice": 0.5, "n": 3}]}],
        "figures": [{"title": "fig", "path": "figures/a.png"}, {"title": "gone", "path": "figures/missing.png"}],
        "timings": {"render": 1.5}, "config": {"k": 1}, "environment": {"python": "3"},
    }
    (tmp_path / "results.json").write_text(json.dumps(results))
    page = write_report(tmp_path).read_text()
    assert "data:image/png;base64," in page and "src=\"figures/" not in page  # nothing linked from outside
    assert "a &lt;note&gt;" in page  # text is escaped
    assert "<td>0.5</td>" in page and "figure missing: figures/missing.png" in page
    assert 'class="fail">no<' in page  # an unmet target is shown as such


def test_report_needs_results(tmp_path: Path) -> None:
    with pytest.raises(SimrealError, match="not an experiment folder"):
        write_report(tmp_path)
    (tmp_path / "results.json").write_text("{oops")
    with pytest.raises(SimrealError, match="unreadable"):
        write_report(tmp_path)
