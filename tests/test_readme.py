"""The README's Python example runs as printed (a documented API that does not work is worse than none)."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def readme_python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_has_a_python_example():
    blocks = readme_python_blocks()
    assert blocks and "import simreal" in blocks[0]


def test_the_readme_python_example_runs(tmp_path, monkeypatch, capsys):
    script = tmp_path / "example.py"
    script.write_text(readme_python_blocks()[0], encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(script), run_name="__main__")
    # It wrote a dataset, a run, predictions and an evaluation, and printed the group-level figure.
    for folder in ("my_frames", "my_run", "my_pred", "my_eval"):
        assert (tmp_path / folder).is_dir(), folder
    printed = capsys.readouterr().out
    assert "'n_groups': 2" in printed
