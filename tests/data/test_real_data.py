"""real_data_root: explicit path, then SIMREAL_DATA, then ../shared/data from the current folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from simreal.data import real_data
from simreal.data.real_data import real_data_folder, real_data_root
from simreal.errors import SimrealError


@pytest.fixture
def layout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tmp/checkout (the current folder) beside tmp/shared/data, with nothing else to find."""
    (tmp_path / "checkout").mkdir()
    (tmp_path / "shared" / "data" / "cvc").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "checkout")
    monkeypatch.delenv(real_data.ENV_VAR, raising=False)
    monkeypatch.setattr(real_data, "_checkout_candidate", lambda: None)  # as in a non-editable install
    return tmp_path


def test_beside_the_current_folder(layout: Path) -> None:
    assert real_data_root() == (layout / "shared" / "data").resolve()
    assert real_data_folder("cvc") == (layout / "shared" / "data" / "cvc").resolve()
    with pytest.raises(SimrealError, match="has no ircadb/"):
        real_data_folder("ircadb")


def test_environment_variable_beats_the_current_folder(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (layout / "elsewhere").mkdir()
    monkeypatch.setenv(real_data.ENV_VAR, str(layout / "elsewhere"))
    assert real_data_root() == (layout / "elsewhere").resolve()
    monkeypatch.setenv(real_data.ENV_VAR, str(layout / "typo"))
    with pytest.raises(SimrealError, match="typo: real-data folder not found .named by the environment variable SIMREAL_DATA"):
        real_data_root()  # a wrong setting is an error, never a silent fall-back to other data


def test_explicit_path_beats_everything(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (layout / "mine").mkdir()
    monkeypatch.setenv(real_data.ENV_VAR, str(layout / "shared" / "data"))
    assert real_data_root(layout / "mine") == (layout / "mine").resolve()
    assert real_data_root(str(layout / "mine")) == (layout / "mine").resolve()
    with pytest.raises(SimrealError, match="given with --real-data"):
        real_data_root(layout / "nope")


def test_nothing_found_says_what_was_tried_and_how_to_set_it(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (layout / "checkout" / "deeper").mkdir()
    monkeypatch.chdir(layout / "checkout" / "deeper")  # ../shared/data from here does not exist
    with pytest.raises(SimrealError) as exc:
        real_data_root()
    message = str(exc.value)
    assert str(layout / "checkout" / "deeper" / ".." / "shared" / "data") in message
    assert "--real-data" in message and "SIMREAL_DATA" in message


def test_checkout_fallback_only_inside_a_source_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "site-packages" / "simreal" / "data" / "real_data.py"
    monkeypatch.setattr(real_data, "__file__", str(fake))
    assert real_data._checkout_candidate() is None  # an installed package: no sibling shared/ to guess
    checkout = tmp_path / "repo"
    (checkout / "src" / "simreal" / "data").mkdir(parents=True)
    (checkout / "pyproject.toml").write_text("")
    monkeypatch.setattr(real_data, "__file__", str(checkout / "src" / "simreal" / "data" / "real_data.py"))
    assert real_data._checkout_candidate() == tmp_path / "shared" / "data"
