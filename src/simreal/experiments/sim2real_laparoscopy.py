"""The ``sim2real-laparoscopy`` experiment: Pfeiffer et al.'s own setting (MICCAI 2019), laparoscopic liver
scenes, end to end with whatever real frames a user supplies (default: the two public P2ILF frames).

This is the pipeline a user runs on their own unlabelled laparoscopic video frames; the colonoscopy
experiment ``sim2real-seg`` is where the method is *measured*, because only there real test labels exist.
Protocol:

1. **Real frames**: the user's folder of real laparoscopic images (``real_images``; default the two P2ILF
   frames, ``P2ILF22_patient1_12.jpg`` and ``patient_tryme_image.jpg``, never the contour label image),
   imported as a dataset at ``real_height`` px high, aspect kept. They teach the translators the real look;
   they carry no label.
2. **Simulation with perfect labels** (``render laparoscopy``, 8 classes): the training scenes use the first
   CT-derived liver mesh (P2ILF ``meshGT.obj``), the validation scenes the second (``patient2_3d-liver-model.obj``),
   so nothing chosen on validation shares the training anatomy.
3. **Translators**: CycleGAN and MUNIT + MS-SSIM with the same sizes, crops and steps as ``sim2real-seg`` at the
   same scale (:data:`~simreal.experiments.sim2real_seg.SIM2REAL_PRESETS`); the last checkpoint is used.
4. **Translated sets**: training and validation frames, labels copied byte for byte; MUNIT with ``K`` styles
   encoded from ``K`` real frames (K = the sim2real-seg preset's, at most the number of real frames).
5. **Segmenters with zero manual labels** (8 classes): one on the raw synthetic frames, one on each translated
   set, the same steps; each epoch chosen on its own (translated) validation set.
6. **Label-validity audit** of the translated validation frames against their sources (structure of
   brightness, label outlines on image edges, the synthetic-only segmenter's Dice on the translations).
7. **The real frames**, segmented by the three networks, shown in a figure.

What cannot be measured here, and why: there is no pixel-wise label of any real frame (P2ILF's public example
has contour lines only), so no Dice on real data; and two real frames give no usable FID / KID (FID needs a
full-rank covariance of 2048 features; KID with n = 2 has no spread). The report says so beside the figures.

Scales: ``smoke`` (the tests: tiny networks, a few frames), ``small`` (this CPU: 128 px frames, the sim2real-seg
small translators), ``full`` (a GPU: 256 px, paper-sized translators).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


from simreal.data.reader import DatasetReader
from simreal.errors import SimrealError
from simreal.experiments import stages
from simreal.experiments.environment import environment
from simreal.experiments.report import write_report
from simreal.experiments.sim2real_seg import SIM2REAL_PRESETS, TRANSLATORS, VALIDITY_MEASURES, train_translators

#: The P2ILF files that are real laparoscopic frames (the folder also holds a contour label image).
P2ILF_FRAMES = ("P2ILF22_patient1_12.jpg", "patient_tryme_image.jpg")
#: Label-validity columns reported here (8 classes: the mean over the foreground classes replaces polyp Dice).
LAP_VALIDITY = tuple(m for m in VALIDITY_MEASURES if m[0] != "seg_dice_polyp") + (
    ("seg_dice_mean", "synthetic-only segmenter's Dice on the translated frames (mean of the 7 foreground classes)", True),
    ("seg_dice_liver", "synthetic-only segmenter's liver Dice on the translated frames", True),
)


@dataclass(frozen=True)
class LaparoscopyScale:
    """How big one run is.

    Args:
        size: side of the square rendered frames, px.
        n_train: rendered training frames (liver mesh 1).
        n_val: rendered validation frames (liver mesh 2).
        real_height: height of the imported real frames, px (width from their aspect).
        seg_steps: optimisation steps of each segmenter (whole epochs, at least this many).
        seg_batch_size: images per segmentation step.
        seg_channels: U-Net channels of the segmenters.
    """

    size: int
    n_train: int
    n_val: int
    real_height: int
    seg_steps: int
    seg_batch_size: int
    seg_channels: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("size", "n_train", "n_val", "real_height", "seg_steps", "seg_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise SimrealError(f"sim2real-laparoscopy preset: {name}: expected an integer >= 1, got {v!r}")


LAP_PRESETS = {
    "smoke": LaparoscopyScale(size=48, n_train=12, n_val=6, real_height=48, seg_steps=4, seg_batch_size=4, seg_channels=(4, 8)),
    "small": LaparoscopyScale(size=128, n_train=600, n_val=120, real_height=128, seg_steps=600, seg_batch_size=8,
                              seg_channels=(8, 16, 32, 64, 128)),
    "full": LaparoscopyScale(size=256, n_train=20000, n_val=1000, real_height=256, seg_steps=20000, seg_batch_size=16,
                             seg_channels=(32, 64, 128, 256, 512)),
}


def real_frame_files(real_images: Path | None, real_data: Path | None) -> list[Path]:
    """The real frames to learn the look from: every image of ``real_images``, or the P2ILF frames.

    Raises:
        SimrealError: the folder is missing or holds no image; the P2ILF frames are missing.
    """
    from simreal.data.external.common import list_images
    from simreal.data.real_data import real_data_folder

    if real_images is not None:
        return list_images(real_images, what="real laparoscopic frames")
    folder = real_data_folder("p2ilf_laparoscopic_liver", real_data)
    files = [folder / name for name in P2ILF_FRAMES]
    for f in files:
        if not f.is_file():
            raise SimrealError("a P2ILF real frame is missing (or pass --real-images DIR)", f)
    return files


def import_real_frames(files: list[Path], dest: Path, height: int) -> Path:
    """The real frames as a dataset ``dest``, ``height`` px high with the first frame's aspect (every frame
    resized to that one size, since the translators batch them)."""
    import shutil

    from PIL import Image

    from simreal.data.external.folder import import_folder

    with Image.open(files[0]) as im:
        w, h = im.size
    width = max(8, int(round(w * height / h / 4.0)) * 4)
    # import_folder reads a whole folder: give it exactly these frames, as links kept beside the dataset (its
    # records name them as their source).
    links = dest.parent / f"{dest.name}_files"
    shutil.rmtree(links, ignore_errors=True)
    links.mkdir(parents=True)
    for f in files:
        os.symlink(Path(f).resolve(), links / Path(f).name)
    return import_folder(links, dest, size=(height, width), modality="laparoscopy", domain="real")


def run_sim2real_laparoscopy(*, out: Path, scale: str, seed: int = 0, workers: int = 2, real_data: Path | None = None,
                             real_images: Path | None = None, log: Callable[[str], None] = print,
                             preset: Any = None) -> dict[str, Any]:
    """Run the laparoscopy sim-to-real pipeline into ``out``; returns the results (also written as results.json).

    Args:
        out: the experiment folder (a rerun with the same arguments reuses finished stages).
        scale: "smoke", "small" or "full" (:data:`LAP_PRESETS`, translators from ``SIM2REAL_PRESETS``).
        seed: seed of rendering and training.
        workers: render processes.
        real_data: folder holding ``p2ilf_laparoscopic_liver/`` (the liver meshes; the default real frames).
        real_images: a folder of the user's real laparoscopic frames (default: the two P2ILF frames).
        log: where stage progress lines go.
        preset: not supported (``--config`` presets are the colonoscopy ones).

    Raises:
        SimrealError: missing meshes or real frames (before any work), a ``--config`` preset, or ``out`` holding a
            run with other arguments.
    """
    from simreal.data.real_data import real_data_folder
    from simreal.metrics.label_validity import evaluate_label_validity
    from simreal.render.laparoscopy_run import DEFAULT_LIVERS, render_laparoscopy_dataset
    from simreal.tasks.predict import predict
    from simreal.tasks.train import train_from_kwargs

    if preset is not None:
        raise SimrealError("sim2real-laparoscopy takes no colonoscopy 'preset' from --config; use --scale")
    lap, s = LAP_PRESETS[scale], SIM2REAL_PRESETS[scale]
    real_files = real_frame_files(real_images, real_data)  # refused before any work
    p2ilf = real_data_folder("p2ilf_laparoscopic_liver", real_data)
    livers = [p2ilf.parent / p for p in DEFAULT_LIVERS]
    for p in livers:
        if not p.is_file():
            raise SimrealError("a P2ILF liver mesh is missing", p)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = stages.Stages(out, {"experiment": "sim2real-laparoscopy", "scale": scale, "laparoscopy": dataclasses.asdict(lap),
                             "sim2real": dataclasses.asdict(s), "seed": seed, "livers": [str(p.resolve()) for p in livers],
                             "real_frames": [str(Path(f).resolve()) for f in real_files]}, log)

    data = out / "data"
    data.mkdir(exist_ok=True)
    real, synth_train, synth_val = data / "real_frames", data / "synth_train", data / "synth_val"
    st.run("real frames", lambda: stages.dataset_once(real, lambda: import_real_frames(real_files, real, lap.real_height)))
    st.run("render training scenes", lambda: stages.dataset_once(synth_train, lambda: render_laparoscopy_dataset(
        synth_train, n=lap.n_train, size=lap.size, seed=seed, livers=[livers[0]], workers=workers, progress=False)))
    st.run("render validation scenes", lambda: stages.dataset_once(synth_val, lambda: render_laparoscopy_dataset(
        synth_val, n=lap.n_val, size=lap.size, seed=seed + 1, livers=[livers[1]], workers=workers, progress=False)))

    runs_dir = out / "runs"
    n_styles = min(s.styles, len(real_files))
    _, translated = train_translators(st, s, synth_train, real, {"train": synth_train, "val": synth_val}, runs_dir, data, seed,
                                      styles=n_styles)

    seg_common = dict(size=lap.size, batch_size=lap.seg_batch_size, channels=lap.seg_channels, schedule="cosine",
                      augment=True, seed=seed)
    seg_sets = {"synthetic": (synth_train, synth_val), **{m: (translated[m]["train"], translated[m]["val"]) for m, _ in TRANSLATORS}}
    seg_runs: dict[str, Path] = {}
    for name, (train_set, val_set) in seg_sets.items():
        run = runs_dir / f"seg_{name}"
        epochs = stages.epochs_for_steps(len(DatasetReader(train_set)), lap.seg_steps, lap.seg_batch_size)
        st.run(f"train seg {name}", lambda run=run, train_set=train_set, val_set=val_set, epochs=epochs: train_from_kwargs(
            "seg", train_set, run, progress=False, epochs=epochs, val=str(val_set), **seg_common))
        seg_runs[name] = run

    evals, preds = out / "eval", out / "predictions"
    for method, _ in TRANSLATORS:
        st.run(f"label validity {method}", lambda method=method: evaluate_label_validity(
            synth_val, translated[method]["val"], evals / f"validity_{method}", segmenter=seg_runs["synthetic"]))
    for name, run in seg_runs.items():
        dest = preds / f"real_{name}"
        st.run(f"segment real frames {name}", lambda run=run, dest=dest: stages.dataset_once(
            dest, lambda: predict(run, real, dest, progress=False)))

    results = _collect(out, lap, s, scale, seed, real_files, n_styles, translated, synth_train, synth_val, st.timings)
    stages.write_results(out, results)
    write_report(out)
    return results


def _collect(out: Path, lap: LaparoscopyScale, s: Any, scale: str, seed: int, real_files: list[Path], n_styles: int,
             translated: dict[str, dict[str, Path]], synth_train: Path, synth_val: Path, timings: dict[str, Any]) -> dict[str, Any]:
    from simreal.experiments.sim2real_seg import _validity_by_source

    evals = out / "eval"
    validity_rows = {m: stages.read_rows(evals / f"validity_{m}") for m, _ in TRANSLATORS}
    validity: dict[str, Any] = {}
    table = []
    for column, label, _ in LAP_VALIDITY:
        per = {m: _validity_by_source(validity_rows[m], column) for m, _ in TRANSLATORS}
        if not all(per.values()):
            continue  # a measure with no finite value in a set (e.g. no edge in any frame at smoke scale)
        validity[column] = {m: stages.group_figure(per[m], column) for m, _ in TRANSLATORS}
        d = stages.paired_figure(per["munit"], per["cyclegan"], column)
        validity[column]["munit_vs_cyclegan"] = d
        table.append({"measure": label, "CycleGAN": validity[column]["cyclegan"]["value"],
                      "MUNIT + MS-SSIM": validity[column]["munit"]["value"],
                      "MUNIT - CycleGAN, frame-level Wilcoxon p (frames of one liver: not independent)":
                          f"{d['mean_diff']:+.4f}, p={d['frame_level']['wilcoxon_p']:.3g}",
                      "n_groups": d["n_groups"], "n_frames": d["n_frames"]})
    val_dice = {name: _best_val_dice(out / "runs" / f"seg_{name}") for name in ("synthetic", "cyclegan", "munit")}
    seg_table = [{"segmenter": f"trained on {what}", "best validation Dice (its own validation set, the epoch kept)": val_dice[name],
                  "validation set": where} for name, what, where in (
        ("synthetic", "the raw synthetic frames", "synthetic, liver mesh 2"),
        ("cyclegan", "CycleGAN-translated frames", "CycleGAN-translated, liver mesh 2"),
        ("munit", "MUNIT-translated frames", "MUNIT-translated, liver mesh 2"))]
    notes = []
    if scale == "smoke":
        notes.append("SMOKE SCALE: tiny networks trained for a few steps. These numbers only show that every stage runs; "
                     "they say nothing about the method.")
    notes += [
        f"Real frames: {len(real_files)} ({', '.join(Path(f).name for f in real_files)}), imported at {lap.real_height} px high. "
        "That is all the real look the translators see: far too few for the method (Pfeiffer et al. used thousands of "
        "frames from many videos), so this run shows that the pipeline works end to end on a user's frames, not how well.",
        "No real frame has a pixel-wise label, so no Dice on real data is possible here; the real frames' segmentations are "
        "shown for inspection only. Two real frames give no usable FID or KID (n = 2), so none is reported.",
        f"Synthetic: {lap.n_train} training frames of liver mesh 1 and {lap.n_val} validation frames of liver mesh 2 "
        f"({lap.size} px, 8 classes). The audit's groups are the validation liver: one group, so only the frame-level test "
        "(which treats frames of one liver as independent) is possible.",
        f"Translators as sim2real-seg at scale {scale!r}: {s.steps} steps, {s.crop} px crops; MUNIT with {n_styles} styles "
        "from the real frames.",
    ]
    return {
        "name": "sim2real-laparoscopy",
        "scale": scale,
        "summary": (f"Laparoscopic liver simulation (8 classes) translated to the look of {len(real_files)} user-supplied real "
                    f"frames by CycleGAN and MUNIT + MS-SSIM at scale {scale!r}; label-validity audit and zero-label "
                    "segmenters, shown on the real frames."),
        "targets": [],
        "tables": [{"title": "Label validity of the translated validation frames (liver mesh 2)",
                    "columns": list(table[0]) if table else ["measure"], "rows": table,
                    "note": "Higher is better for every measure: how much of the source frame's structure and label "
                            "outlines the translation kept."},
                   {"title": "Zero-label segmenters: validation Dice (synthetic or translated frames, never real)",
                    "columns": list(seg_table[0]), "rows": seg_table,
                    "note": "Each on its own validation set, so the rows are not comparable with each other; no real "
                            "frame has a label."}],
        "figures": _figures(out, translated, synth_val, n_styles),
        "notes": notes,
        "metrics": {"validity": validity, "best_val": val_dice, "n_real_frames": len(real_files),
                    "n_train": len(DatasetReader(synth_train)), "n_val": len(DatasetReader(synth_val))},
        "config": {"laparoscopy": dataclasses.asdict(lap), "sim2real": dataclasses.asdict(s), "seed": seed,
                   "real_frames": [str(f) for f in real_files]},
        "environment": environment(),
        "timings": {**timings, "total (stages run now)": round(sum(v for v in timings.values() if isinstance(v, float)), 2)},
    }


def _best_val_dice(run: Path) -> float:
    """The best ``val/dice`` (mean foreground Dice) a segmentation run logged: the epoch it kept."""
    import csv

    with open(run / "metrics.csv", newline="") as f:
        values = [float(r["val/dice"]) for r in csv.DictReader(f) if r.get("val/dice")]
    if not values:
        raise SimrealError("the run logged no validation Dice", run / "metrics.csv")
    return max(values)


def _figures(out: Path, translated: dict[str, dict[str, Path]], synth_val: Path, n_styles: int) -> list[dict[str, str]]:
    from simreal.adapt.translate import style_ids
    from simreal.data.contact_sheet import overlay_mask, pick_indices

    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    src = DatasetReader(synth_val)
    trans = {m: DatasetReader(translated[m]["val"]) for m, _ in TRANSLATORS}
    pos = {m: {sid: i for i, sid in enumerate(r.ids)} for m, r in trans.items()}
    rows = []
    for i in pick_indices(len(src), 4):
        sid = src.ids[i]
        img = src.read(i, "image")
        row = [("synthetic", img), ("its labels", overlay_mask(img, src.read(i, "mask"))),
               ("CycleGAN", trans["cyclegan"].read(pos["cyclegan"][sid], "image"))]
        ids = style_ids(sid, n_styles) if n_styles > 1 else [sid]
        row += [(f"MUNIT style {k}", trans["munit"].read(pos["munit"][t], "image")) for k, t in enumerate(ids)]
        rows.append(row)
    stages.prediction_grid(rows, fig_dir / "translations.png", "Synthetic validation frames and their translations")
    real = DatasetReader(out / "data" / "real_frames")
    predicted = {name: DatasetReader(out / "predictions" / f"real_{name}") for name in ("synthetic", "cyclegan", "munit")}
    rows = []
    for i in range(min(4, len(real))):
        img = real.read(i, "image")
        rows.append([("real frame", img)] + [(f"seg trained on {name}", overlay_mask(img, p.read(i, "mask")))
                                             for name, p in predicted.items()])
    stages.prediction_grid(rows, fig_dir / "real_frames.png", "Real frames segmented by networks that saw no manual label")
    return [{"title": "Synthetic validation frames (liver mesh 2), their 8-class labels, and their translations",
             "path": "figures/translations.png"},
            {"title": "The real frames, segmented by the synthetic-only, CycleGAN-trained and MUNIT-trained networks "
                      "(no real label exists to score them)", "path": "figures/real_frames.png"}]
