"""The ``sim2real-seg`` experiment: sim-to-real translation with content preservation (Pfeiffer et al., MICCAI
2019) on colonoscopy, where real test data exists: polyp segmentation trained with no manual label.

A translator learns the real look from unlabelled real frames and is applied to the perfectly labelled
synthetic frames; the labels are copied byte for byte, so a segmenter trained on the translated set has
never seen a manual label. Protocol (seeds and sets in :mod:`simreal.experiments.colon_protocol`):

1. **Start from a finished baseline** (:func:`~simreal.experiments.baseline.baseline_outputs`): its synthetic
   training and validation frames (polyp masks from the renderer), its synthetic-only polyp network (the
   "synthetic-only" row: trained on the raw synthetic frames, best epoch on the synthetic validation colons)
   and its CVC-ClinicDB import, split by study into the fixed "adapt" and "test" halves
   (:func:`~simreal.experiments.colon_protocol.cvc_halves`).
2. **Translators** (the shared adversarial engine, :mod:`simreal.adapt.engine`): CycleGAN and MUNIT with the
   MS-SSIM content terms, both trained on the synthetic training images (domain A) and the images of the
   CVC "adapt" sequences (domain B; never a mask), for a fixed number of steps; the last checkpoint is used.
3. **Translated sets**: the first ``n_translate`` evenly spaced synthetic training frames (image and polyp
   mask) and the whole synthetic validation set, translated by each translator: CycleGAN once per frame,
   MUNIT with ``styles`` K style codes encoded from K images of the CVC adapt sequences (style k shared by
   every frame, as the released code's style folders), so MUNIT's sets hold K times the frames.
4. **Zero-manual-label segmenters**: a polyp U-Net trained from scratch on each translated training set
   with the baseline's recipe, the same number of optimisation steps for both (``seg_steps``), its epoch
   chosen on that translator's translated validation set by Dice. No real label enters training or a choice.
5. **Evaluation, once, on the CVC "test" sequences** (14 studies): polyp Dice of synthetic-only, CycleGAN and
   MUNIT; paired two-sided Wilcoxon tests on study means and cluster-bootstrap intervals (the frame level
   beside them, labelled as assuming independent frames).
6. **Label-validity audit** (:func:`~simreal.metrics.label_validity.evaluate_label_validity`) of the translated
   validation frames against their synthetic sources: structure of brightness (SSIM, MS-SSIM), mask outlines
   on image edges, and the synthetic-only segmenter's Dice on the translated frames; MUNIT vs CycleGAN paired
   on the source frames' colons.
7. **Real labels, few**: ``k`` labelled frames of the CVC "adapt" sequences (evenly spaced over the half, so
   from many studies; then all of them), a segmenter fine-tuned from the MUNIT one vs the same network trained
   from scratch on the same k frames (real only), the same steps. All k frames train, so there is no
   validation set: the epoch with the lowest training loss is kept (nothing is chosen on a test figure).
8. **FID and KID** (offline FID Inception-v3) of the synthetic, CycleGAN-translated and MUNIT-translated
   frames (same source frames) against the CVC test images, and of the CVC adapt images against them (the
   real-vs-real floor).

The laparoscopy version of the pipeline (``render laparoscopy``, the same translators on a user's own real
frames) is the experiment :mod:`~simreal.experiments.sim2real_laparoscopy`.

Choices, fixed a priori and never looked up on an evaluation figure: translator sizes, steps, crops and
learning rates (:data:`SIM2REAL_PRESETS`; every other weight is the method's default from methods.md), K,
the segmentation steps and the curve's k values.

Scales (every number is reported with its scale):

* ``smoke``: what the tests run, on top of the baseline smoke: tiny translators (a few steps), a few
  dozen frames. Its numbers say nothing about the method.
* ``small``: this 2-core CPU given a finished baseline ``--scale small``: translators at 64 px crops of the
  128 px frames (MUNIT dim 16, 2 residual blocks, 2-scale discriminators; CycleGAN ngf 16, 4 blocks), 500
  steps each; 1200 frames translated (MUNIT: 2 styles); segmenters 1000 steps; the curve k = 10, 30, 100 and
  all (about 300) at 200 steps.
* ``full``: a GPU, paper-sized translators (dim 64, 4 residual blocks, 3 scales) on 256 px frames.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from simreal.data.reader import DatasetReader
from simreal.errors import SimrealError
from simreal.experiments import stages
from simreal.experiments.colon_protocol import (
    CVC_SPLIT,
    SCALE_PRESETS,
    ColonScale,
    colon_seeds,
    cvc_halves,
    scale_arguments,
)
from simreal.experiments.environment import environment
from simreal.experiments.report import write_report

#: The issue's goal: zero-manual-label polyp Dice on the CVC-ClinicDB test sequences.
DICE_TARGET = 0.80
#: Pfeiffer et al.'s liver Dice with translated training data (the paper's anchor).
PAPER_LIVER_DICE = 0.89
#: The translators, in table order (method name, label).
TRANSLATORS = (("cyclegan", "CycleGAN"), ("munit", "MUNIT + MS-SSIM"))


@dataclass(frozen=True)
class Sim2RealScale:
    """How big one run of the experiment is (on top of the baseline's :class:`ColonScale`).

    Args:
        crop: side of the square training crops of both translators, px (native-resolution windows; the
            translators are fully convolutional and translate whole frames at their own size).
        batch_size: images per translator mini-batch.
        steps: training steps of each translator (the last checkpoint is used).
        munit_dim, munit_res, munit_mlp, munit_d_dim, munit_d_layers, munit_d_scales: MUNIT's generator width,
            residual blocks and style MLP width, and its multi-scale discriminators (width, layers, scales).
        cyclegan_ngf, cyclegan_blocks, cyclegan_ndf: CycleGAN's generator width and ResNet blocks, PatchGAN width.
        n_translate: synthetic training frames translated (evenly spaced over the baseline's training set).
        styles: MUNIT styles per frame (encoded from as many CVC adapt images).
        seg_steps: optimisation steps of each zero-label segmenter (whole epochs, at least this many).
        seg_batch_size: images per segmentation step (every segmentation run).
        curve_k: real labelled frame counts of the few-label curve (all adapt frames are added as the last point).
        curve_steps: optimisation steps of every curve run.
        curve_lr: learning rate of the fine-tuned curve runs (from-scratch runs use the baseline's).
        fid_max_images: most images of a set that enter FID / KID (evenly spaced; the same source ids for the
            synthetic and the translated sets).
    """

    crop: int
    batch_size: int
    steps: int
    munit_dim: int
    munit_res: int
    munit_mlp: int
    munit_d_dim: int
    munit_d_layers: int
    munit_d_scales: int
    cyclegan_ngf: int
    cyclegan_blocks: int
    cyclegan_ndf: int
    n_translate: int
    styles: int
    seg_steps: int
    seg_batch_size: int
    curve_k: tuple[int, ...]
    curve_steps: int
    curve_lr: float = 5e-4
    fid_max_images: int = 300

    def __post_init__(self) -> None:
        problems = []
        for name in ("crop", "batch_size", "steps", "munit_dim", "munit_mlp", "munit_d_dim", "munit_d_layers", "munit_d_scales",
                     "cyclegan_ngf", "cyclegan_ndf", "n_translate", "styles", "seg_steps", "seg_batch_size", "curve_steps",
                     "fid_max_images"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"{name}: expected an integer >= 1, got {v!r}")
        if not self.curve_k or list(self.curve_k) != sorted(set(self.curve_k)) or self.curve_k[0] < 1:
            problems.append(f"curve_k: expected increasing frame counts >= 1, got {self.curve_k!r}")
        if not self.curve_lr > 0:
            problems.append(f"curve_lr: must be > 0, got {self.curve_lr}")
        if problems:
            raise SimrealError("sim2real-seg preset: " + "; ".join(problems))


SIM2REAL_PRESETS = {
    "smoke": Sim2RealScale(crop=32, batch_size=2, steps=6, munit_dim=8, munit_res=1, munit_mlp=16, munit_d_dim=8,
                           munit_d_layers=3, munit_d_scales=2, cyclegan_ngf=8, cyclegan_blocks=1, cyclegan_ndf=8,
                           n_translate=32, styles=2, seg_steps=8, seg_batch_size=8, curve_k=(4, 8), curve_steps=4,
                           fid_max_images=10),
    "small": Sim2RealScale(crop=64, batch_size=4, steps=500, munit_dim=16, munit_res=2, munit_mlp=64, munit_d_dim=16,
                           munit_d_layers=3, munit_d_scales=2, cyclegan_ngf=16, cyclegan_blocks=4, cyclegan_ndf=16,
                           n_translate=1200, styles=2, seg_steps=1000, seg_batch_size=8, curve_k=(10, 30, 100),
                           curve_steps=200),
    "full": Sim2RealScale(crop=256, batch_size=1, steps=100_000, munit_dim=64, munit_res=4, munit_mlp=256, munit_d_dim=64,
                          munit_d_layers=4, munit_d_scales=3, cyclegan_ngf=64, cyclegan_blocks=9, cyclegan_ndf=64,
                          n_translate=20000, styles=4, seg_steps=20000, seg_batch_size=16, curve_k=(10, 30, 100),
                          curve_steps=2000, fid_max_images=2000),
}


def translator_config(method: str, s: Sim2RealScale, synthetic: Path, real: Path, run: Path, seed: int):
    """The run config (:class:`~simreal.adapt.config.MunitRunConfig` or ``CycleGANRunConfig``) of one translator:
    ``synthetic`` is domain A, ``real`` domain B."""
    from simreal.adapt.config import CycleGANConfig, CycleGANRunConfig, EngineConfig, MunitConfig, MunitRunConfig, UnpairedDataConfig

    data = UnpairedDataConfig(real=str(real), synthetic=str(synthetic), size=(s.crop, s.crop), batch_size=s.batch_size, mode="crop")
    engine = EngineConfig(steps=s.steps, seed=seed, checkpoint_every=max(1, min(s.steps, 250)), sample_every=max(1, s.steps // 4),
                          log_every=max(1, min(10, s.steps // 6)), n_samples=4, devices="1")
    if method == "munit":
        return MunitRunConfig(out=str(run), data=data, engine=engine, munit=MunitConfig(
            dim=s.munit_dim, n_res=s.munit_res, mlp_dim=s.munit_mlp, d_dim=s.munit_d_dim, d_n_layer=s.munit_d_layers,
            d_num_scales=s.munit_d_scales))
    if method == "cyclegan":
        return CycleGANRunConfig(out=str(run), data=data, engine=engine, cyclegan=CycleGANConfig(
            ngf=s.cyclegan_ngf, n_blocks=s.cyclegan_blocks, ndf=s.cyclegan_ndf))
    raise SimrealError(f"unknown translator {method!r}; known: {', '.join(m for m, _ in TRANSLATORS)}")


def train_translators(st: stages.Stages, s: Sim2RealScale, synthetic: Path, real: Path, to_translate: dict[str, Path],
                      runs_dir: Path, data: Path, seed: int, *, styles: int) -> tuple[dict[str, Path], dict[str, dict[str, Path]]]:
    """Both translators (:data:`TRANSLATORS`: ``synthetic`` to the look of ``real``) trained as stages, and every
    set of ``to_translate`` (part name -> dataset) translated by each, labels carried over: CycleGAN once per
    frame, MUNIT with ``styles`` style codes encoded from images of ``real``.

    Returns:
        (method -> translator run, method -> part -> translated dataset).
    """
    from simreal.adapt.cyclegan import train_cyclegan
    from simreal.adapt.munit import train_munit
    from simreal.adapt.translate import translate_dataset

    trainers = {"munit": train_munit, "cyclegan": train_cyclegan}
    translators: dict[str, Path] = {}
    translated: dict[str, dict[str, Path]] = {}
    for method, _ in TRANSLATORS:
        run = runs_dir / f"translator_{method}"
        config = translator_config(method, s, synthetic, real, run, seed)
        st.run(f"train translator {method}", lambda method=method, config=config: trainers[method](config, progress=False))
        translators[method] = run
        k, style_from = (styles, real) if method == "munit" else (1, None)
        translated[method] = {}
        for part, src in to_translate.items():
            dest = data / f"{method}_{part}"
            st.run(f"translate {part} {method}", lambda run=run, src=src, dest=dest, k=k, style_from=style_from:
                   stages.dataset_once(dest, lambda: translate_dataset(run, src, dest, styles=k, style_from=style_from,
                                                                       seed=seed, device="auto", progress=False)))
            translated[method][part] = dest
    return translators, translated


def curve_indices(adapt: list[int], k: int) -> list[int]:
    """``k`` record indices evenly spaced over the (study-ordered) adapt half, so that few frames still come
    from many studies; all of them for ``k >= len(adapt)``."""
    adapt = sorted(adapt)
    if k >= len(adapt):
        return adapt
    return [adapt[int(i)] for i in np.linspace(0, len(adapt) - 1, k).round().astype(int)]


def run_sim2real_seg(*, out: Path, scale: str, seed: int = 0, workers: int = 2, real_data: Path | None = None,
                     baseline: Path | None = None, log: Callable[[str], None] = print,
                     preset: ColonScale | None = None) -> dict[str, Any]:
    """Run the sim-to-real segmentation protocol into ``out``; returns the results (also written as results.json).

    Args:
        out: the experiment folder (a rerun with the same arguments reuses finished stages).
        scale: "smoke", "small" or "full" (the baseline's :data:`SCALE_PRESETS` and :data:`SIM2REAL_PRESETS`).
        seed: seed of rendering and training (the baseline must have the same).
        workers: render processes (for the baseline, when it runs here).
        real_data: folder holding ``cvc-clinicdb_256/`` (used when the baseline runs here).
        baseline: a finished ``experiment baseline`` folder of the same scale and seed (only read); None runs
            (or resumes) it into ``OUT/baseline``.
        log: where stage progress lines go.
        preset: the baseline's scale values, when they differ from the named preset (``--config``).

    Raises:
        SimrealError: ``baseline`` is not a finished baseline folder of the same scale, preset and seed (before
            any work), or ``out`` holds a run with other arguments.
    """
    from simreal.experiments.baseline import start_from_baseline
    from simreal.metrics.evaluate import evaluate_seg
    from simreal.metrics.label_validity import evaluate_label_validity
    from simreal.tasks.predict import predict
    from simreal.tasks.train import train_from_kwargs

    cfg = preset or SCALE_PRESETS[scale]
    s = SIM2REAL_PRESETS[scale]
    out = Path(out)
    base, st = start_from_baseline(out, baseline, "sim2real-seg", {"sim2real": dataclasses.asdict(s)}, scale=scale, preset=cfg,
                                   seed=seed, workers=workers, real_data=real_data, log=log)

    # -- data: the CVC halves, the synthetic frames to translate ---------------------------------------------
    data = out / "data"
    halves = cvc_halves(base.data.cvc)
    cvc_adapt, cvc_test = data / "cvc_adapt_images", data / "cvc_test"
    st.run("CVC adapt sequences (images only)", lambda: stages.dataset_once(cvc_adapt, lambda: stages.subset_dataset(
        base.data.cvc, cvc_adapt, halves["adapt"], kinds=("image",),
        why="images of the CVC-ClinicDB adapt sequences: what the translators learn the real look from (no masks)")))
    st.run("CVC test sequences", lambda: stages.dataset_once(cvc_test, lambda: stages.subset_dataset(
        base.data.cvc, cvc_test, halves["test"], why="the CVC-ClinicDB test sequences (evaluation only)")))
    n_train = len(DatasetReader(base.data.train))
    picked = sorted({int(i) for i in np.linspace(0, n_train - 1, min(s.n_translate, n_train)).round()})
    synth_train, synth_val = data / "synth_train_to_translate", data / "synth_val"
    st.run("synthetic frames to translate", lambda: stages.dataset_once(synth_train, lambda: stages.subset_dataset(
        base.data.train, synth_train, picked, kinds=("image", "mask"),
        why=f"{len(picked)} evenly spaced synthetic training frames (image + polyp mask) to translate")))
    n_val = len(DatasetReader(base.data.val))
    st.run("synthetic validation frames", lambda: stages.dataset_once(synth_val, lambda: stages.subset_dataset(
        base.data.val, synth_val, list(range(n_val)), kinds=("image", "mask"),
        why="the synthetic validation colons (image + polyp mask): translated, they choose each segmenter's epoch")))

    # -- translators, and the translated sets ------------------------------------------------------------------
    runs_dir = out / "runs"
    translators, translated = train_translators(st, s, base.data.train, cvc_adapt, {"train": synth_train, "val": synth_val},
                                                runs_dir, data, seed, styles=s.styles)

    # -- zero-manual-label segmenters ----------------------------------------------------------------------------
    seg_common = dict(size=cfg.size, batch_size=s.seg_batch_size, channels=cfg.channels, lr=cfg.lr, schedule="cosine",
                      augment=True, seed=seed)
    seg_runs: dict[str, Path] = {"synthetic": base.seg_run}
    for method, _ in TRANSLATORS:
        run = runs_dir / f"seg_{method}"
        train_set = translated[method]["train"]
        epochs = stages.epochs_for_steps(len(DatasetReader(train_set)), s.seg_steps, s.seg_batch_size)
        st.run(f"train seg {method}", lambda run=run, train_set=train_set, epochs=epochs, method=method: train_from_kwargs(
            "seg", train_set, run, progress=False, epochs=epochs, val=str(translated[method]["val"]), **seg_common))
        seg_runs[method] = run

    # -- few real labels: fine-tuned from the MUNIT segmenter vs real only -----------------------------------------
    ks = [k for k in s.curve_k if k < len(halves["adapt"])] + [len(halves["adapt"])]
    for k in ks:
        labelled = data / f"cvc_adapt_labelled_{k}"
        st.run(f"CVC adapt labelled {k}", lambda k=k, labelled=labelled: stages.dataset_once(labelled, lambda: stages.subset_dataset(
            base.data.cvc, labelled, curve_indices(halves["adapt"], k),
            why=f"{k} labelled frames of the CVC-ClinicDB adapt sequences (the few-label curve)")))
        epochs = stages.epochs_for_steps(k, s.curve_steps, s.seg_batch_size)
        for kind, extra in (("finetuned", dict(init=str(seg_runs["munit"]), lr=s.curve_lr)), ("scratch", {})):
            run = runs_dir / f"curve_{kind}_{k}"
            options = {**seg_common, "val_fraction": 0.0, **extra}
            st.run(f"train curve {kind} {k}", lambda run=run, labelled=labelled, epochs=epochs, options=options: train_from_kwargs(
                "seg", labelled, run, progress=False, epochs=epochs, **options))
            seg_runs[f"curve_{kind}_{k}"] = run

    # -- evaluation on the CVC test sequences -----------------------------------------------------------------------
    preds, evals = out / "predictions", out / "eval"
    for name, run in seg_runs.items():
        dest = preds / f"seg_{name}"
        st.run(f"predict CVC test {name}", lambda run=run, dest=dest: stages.dataset_once(
            dest, lambda: predict(run, cvc_test, dest, progress=False)))
        st.run(f"eval CVC test {name}", lambda name=name, dest=dest: evaluate_seg(dest, cvc_test, evals / f"seg_{name}"))

    # -- label validity, image-set distances ------------------------------------------------------------------------
    for method, _ in TRANSLATORS:
        st.run(f"label validity {method}", lambda method=method: evaluate_label_validity(
            synth_val, translated[method]["val"], evals / f"validity_{method}", segmenter=base.seg_run))
    fid_sets = {"CVC test": cvc_test, "CVC adapt": cvc_adapt, "synthetic": synth_train,
                **{f"{method} translated": _first_style(translated[method]["train"], synth_train, s.styles if method == "munit" else 1,
                                                      data / f"{method}_train_style0") for method, _ in TRANSLATORS}}
    st.run("FID and KID", lambda: stages.image_set_distances(fid_sets, FID_PAIRS, out, s.fid_max_images, evals / "fid.json"))

    results = _collect(out, cfg, s, scale, seed, base, halves, ks, translators, translated, synth_val, cvc_test, st.timings)
    stages.write_results(out, results)
    write_report(out)
    return results


#: Pairs of :func:`~simreal.experiments.stages.image_set_distances` (label, set A, set B).
FID_PAIRS = (
    ("synthetic vs CVC test (before translation)", "synthetic", "CVC test"),
    ("CycleGAN-translated vs CVC test", "cyclegan translated", "CVC test"),
    ("MUNIT-translated (style 0) vs CVC test", "munit translated", "CVC test"),
    ("CVC adapt vs CVC test (real vs real: the floor)", "CVC adapt", "CVC test"),
)


def _first_style(translated: Path, source: Path, styles: int, dest: Path) -> Path:
    """The frames of style 0 of a K-style translation of ``source`` (ids ``<id>_s00``), in the source's order, as
    a dataset ``dest`` (so FID / KID compare the same source frames for every method); the set itself for K = 1."""
    from simreal.adapt.translate import style_ids

    if styles == 1:
        return translated
    position = {sid: i for i, sid in enumerate(DatasetReader(translated).ids)}
    style0 = [position[style_ids(sid, styles)[0]] for sid in DatasetReader(source).ids]
    stages.dataset_once(dest, lambda: stages.subset_dataset(translated, dest, style0, kinds=("image",),
                                                            why="style 0 of the translated training frames (for FID / KID)"))
    return dest


# -- results -------------------------------------------------------------------------------------------------------


def _ci(f: dict[str, Any]) -> str:
    return f"{f['value']:.4f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]"


def _paired_row(label: str, d: dict[str, Any]) -> dict[str, Any]:
    frame = d["frame_level"]
    return {"comparison": label, "A": d["mean_a"], "B": d["mean_b"],
            "A - B [95% CI, studies resampled]": f"{d['mean_diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]",
            "Wilcoxon p (study means)": d["wilcoxon_p"],
            "frame level (assumes independent frames): diff, p": f"{frame['mean_diff']:+.4f}, p={frame['wilcoxon_p']:.3g}",
            "n_groups": d["n_groups"], "n_frames": d["n_frames"]}


_PAIRED_COLUMNS = ["comparison", "A", "B", "A - B [95% CI, studies resampled]", "Wilcoxon p (study means)",
                   "frame level (assumes independent frames): diff, p", "n_groups", "n_frames"]

#: Label-validity columns reported (rows.csv column, label, higher is better?).
VALIDITY_MEASURES = (
    ("ssim_gray", "SSIM of brightness, translated vs source", True),
    ("ms_ssim_gray", "MS-SSIM of brightness", True),
    ("boundary_recall_kept", "mask outline on strong image edges, kept (translated / source)", True),
    ("boundary_contrast_kept", "mask-outline contrast, kept (translated / source)", True),
    ("edge_f1", "strong edges matched to the source's (F1)", True),
    ("seg_dice_polyp", "synthetic-only segmenter's polyp Dice on the translated frames", True),
)


def _validity_by_source(rows: list[dict[str, str]], column: str) -> list[dict[str, Any]]:
    """Per-source-frame means of a label-validity column (a K-style translation has K rows per source frame),
    as rows keyed by the source id and grouped by its colon: what two translators are paired on."""
    by_source: dict[str, list[float]] = {}
    groups: dict[str, str] = {}
    for r in rows:
        v = r.get(column, "")
        if v in ("", "nan") or not np.isfinite(float(v)):
            continue
        by_source.setdefault(r["source_id"], []).append(float(v))
        groups[r["source_id"]] = r["group"]
    return [{"id": sid, "group": groups[sid], column: float(np.mean(v))} for sid, v in by_source.items()]


def _collect(out: Path, cfg: ColonScale, s: Sim2RealScale, scale: str, seed: int, base: Any, halves: dict[str, list[int]],
             ks: list[int], translators: dict[str, Path], translated: dict[str, dict[str, Path]], synth_val: Path,
             cvc_test: Path, timings: dict[str, Any]) -> dict[str, Any]:
    evals = out / "eval"
    seg_rows = {p.name[len("seg_"):]: stages.read_rows(p) for p in sorted(evals.glob("seg_*"))}
    dice = {name: stages.group_figure(rows, "dice_polyp") for name, rows in seg_rows.items()}
    labels = {"synthetic": "synthetic only (the baseline's network)", **{m: f"{label}-translated" for m, label in TRANSLATORS}}
    paired = {
        "cyclegan_vs_synthetic": stages.paired_figure(seg_rows["cyclegan"], seg_rows["synthetic"], "dice_polyp"),
        "munit_vs_synthetic": stages.paired_figure(seg_rows["munit"], seg_rows["synthetic"], "dice_polyp"),
        "munit_vs_cyclegan": stages.paired_figure(seg_rows["munit"], seg_rows["cyclegan"], "dice_polyp"),
    }
    baseline_dice = base.results["metrics"]["seg"]["cvc_test"]

    validity_rows = {m: stages.read_rows(evals / f"validity_{m}") for m, _ in TRANSLATORS}
    validity: dict[str, Any] = {}
    for column, _, _ in VALIDITY_MEASURES:
        per = {m: _validity_by_source(validity_rows[m], column) for m, _ in TRANSLATORS}
        validity[column] = {m: stages.group_figure(per[m], column) for m, _ in TRANSLATORS}
        try:
            validity[column]["munit_vs_cyclegan"] = stages.paired_figure(per["munit"], per["cyclegan"], column)
        except SimrealError:  # no frame with the measure in both (e.g. no polyp in any validation frame)
            validity[column]["munit_vs_cyclegan"] = None

    curve = []
    for k in ks:
        ft, sc = seg_rows[f"curve_finetuned_{k}"], seg_rows[f"curve_scratch_{k}"]
        n_studies = len({rec.group for rec in DatasetReader(out / "data" / f"cvc_adapt_labelled_{k}").records})
        curve.append({"k": k, "studies": n_studies, "finetuned": stages.group_figure(ft, "dice_polyp"),
                      "scratch": stages.group_figure(sc, "dice_polyp"), "paired": stages.paired_figure(ft, sc, "dice_polyp")})
    fid = json.loads((evals / "fid.json").read_text())

    targets = []
    for m, label in TRANSLATORS:
        d = dice[m]
        targets.append({"target": f"zero-manual-label polyp Dice on CVC-ClinicDB TEST, {label} (n_groups={d['n_groups']} "
                                  f"studies, n_frames={d['n_frames']})", "value": d["value"], "threshold": f">= {DICE_TARGET}",
                        "met": bool(d["value"] >= DICE_TARGET)})
    d = paired["munit_vs_synthetic"]
    targets.append({"target": f"MUNIT + MS-SSIM above synthetic-only ({baseline_dice['value']:.3f}), group-level Wilcoxon p < 0.05",
                    "value": d["mean_a"], "threshold": f"> {d['mean_b']:.3f}, p < 0.05",
                    "met": bool(d["mean_diff"] > 0 and d["wilcoxon_p"] < 0.05)})

    dice_table = [{"segmenter": labels[n], "trained on": what, "Dice [95% CI, studies resampled]": _ci(dice[n]),
                   "frame mean": dice[n]["frame_mean"], "n_groups": dice[n]["n_groups"], "n_frames": dice[n]["n_frames"]}
                  for n, what in (("synthetic", "raw synthetic frames (no manual label)"),
                                  ("cyclegan", "CycleGAN-translated synthetic frames (no manual label)"),
                                  ("munit", f"MUNIT-translated synthetic frames, {s.styles} styles (no manual label)"))]
    paired_table = [_paired_row(label, paired[key]) for key, label in (
        ("cyclegan_vs_synthetic", "A = CycleGAN, B = synthetic only"), ("munit_vs_synthetic", "A = MUNIT + MS-SSIM, B = synthetic only"),
        ("munit_vs_cyclegan", "A = MUNIT + MS-SSIM, B = CycleGAN"))]
    validity_table = []
    for column, label, _ in VALIDITY_MEASURES:
        v = validity[column]
        cmp = v["munit_vs_cyclegan"]
        validity_table.append({
            "measure": label, "CycleGAN": _ci(v["cyclegan"]), "MUNIT + MS-SSIM": _ci(v["munit"]),
            "MUNIT - CycleGAN [95% CI, colons resampled]": "n/a" if cmp is None else
            f"{cmp['mean_diff']:+.4f} [{cmp['ci_low']:+.4f}, {cmp['ci_high']:+.4f}]",
            "Wilcoxon p (colon means)": float("nan") if cmp is None else cmp["wilcoxon_p"],
            "n_groups": v["munit"]["n_groups"], "n_frames (source frames)": v["munit"]["n_frames"]})
    curve_table = [{"k real labelled frames": c["k"], "studies": c["studies"],
                    "fine-tuned from MUNIT segmenter": _ci(c["finetuned"]), "real only (from scratch)": _ci(c["scratch"]),
                    "fine-tuned - real only [95% CI]": f"{c['paired']['mean_diff']:+.4f} [{c['paired']['ci_low']:+.4f}, "
                                                       f"{c['paired']['ci_high']:+.4f}]",
                    "Wilcoxon p (study means)": c["paired"]["wilcoxon_p"], "n_groups": c["paired"]["n_groups"],
                    "n_frames": c["paired"]["n_frames"]} for c in curve]
    per_study = []
    for g in sorted({r["group"] for r in seg_rows["synthetic"]}):
        row = {"study": g}
        for n in ("synthetic", "cyclegan", "munit"):
            row[f"Dice {n}"], row["n_frames"] = stages.mean_of(seg_rows[n], "dice_polyp", lambda r, g=g: r["group"] == g)
        per_study.append(row)
    fid_table = [{k: r[k] for k in ("pair", "n_a", "n_b", "fid", "kid_mean", "kid_std")} for r in fid]

    notes = _notes(scale, s, dice, paired, baseline_dice, validity, curve, fid)
    return {
        "name": "sim2real-seg",
        "scale": scale,
        "summary": (f"Sim-to-real translation at scale {scale!r}: CycleGAN and MUNIT + MS-SSIM learn the real look from the "
                    "unlabelled CVC-ClinicDB adapt sequences; polyp networks trained on the translated synthetic frames "
                    "(zero manual labels) are tested on the CVC test sequences. Groups: studies (Dice), colons (label validity)."),
        "targets": targets,
        "tables": [
            {"title": "Zero-manual-label polyp segmentation on the real CVC-ClinicDB TEST sequences", "columns": list(dice_table[0]),
             "rows": dice_table,
             "note": f"The baseline's own CVC TEST figure (same network as the first row): {_ci(baseline_dice)}, n_frames "
                     f"{baseline_dice['n_frames']}. Paper anchors: liver Dice {PAPER_LIVER_DICE} (Pfeiffer et al.)."},
            {"title": "Paired comparisons on the CVC TEST frames (polyp Dice)", "columns": _PAIRED_COLUMNS, "rows": paired_table,
             "note": "Two-sided Wilcoxon signed-rank on the study means (a study = one video sequence; 23 and 24 together); "
                     "the interval resamples studies."},
            {"title": "Label validity of the translated synthetic validation frames (source: the same frames untranslated)",
             "columns": list(validity_table[0]), "rows": validity_table,
             "note": "MUNIT rows are averaged over its styles per source frame, then paired with CycleGAN on the same source "
                     "frames; groups are the validation colons, so with few colons the p-value cannot be small."},
            {"title": "Few real labels: Dice on CVC TEST vs k labelled frames of the adapt sequences", "columns": list(curve_table[0]),
             "rows": curve_table,
             "note": f"{s.curve_steps} optimisation steps per run; the fine-tuned runs start from the MUNIT segmenter (lr "
                     f"{s.curve_lr:g}), the real-only runs from random weights (lr {cfg.lr:g}). k = 0 is the MUNIT row above."},
            {"title": "FID and KID against the CVC-ClinicDB TEST images (offline FID Inception-v3)",
             "columns": ["pair", "n_a", "n_b", "fid", "kid_mean", "kid_std"], "rows": fid_table,
             "note": "Lower = closer to the real test frames. At these n FID is biased upwards (n < 2048 features): read KID, "
                     "and compare FIDs only at equal n."},
            {"title": "CVC TEST Dice per study", "columns": list(per_study[0]), "rows": per_study},
        ],
        "figures": _figures(out, translated, synth_val, cvc_test, translators, _curve_points(curve, dice["munit"])),
        "notes": notes,
        "metrics": {"dice": dice, "paired": paired, "baseline_cvc_test_dice": baseline_dice, "validity": validity,
                    "curve": curve, "fid": fid},
        "config": {
            "scale": scale_arguments(scale, cfg), "sim2real": dataclasses.asdict(s), "seed": seed,
            "baseline": str(base.root.resolve()), "cvc_split": CVC_SPLIT,
            "cvc_halves": {k: len(v) for k, v in halves.items()},
            "colons": {f"baseline {k}": v for k, v in colon_seeds(seed, cfg).items()},
            "translators": {m: json.loads((run / "config.json").read_text()) for m, run in translators.items()},
        },
        "environment": environment(),
        "timings": {**timings, "total (stages run now)": round(sum(v for v in timings.values() if isinstance(v, float)), 2)},
    }


def _verdict(d: dict[str, Any]) -> str:
    sig = d["wilcoxon_p"] < 0.05
    word = "higher" if d["mean_diff"] > 0 else "lower" if d["mean_diff"] < 0 else "the same"
    return (f"{word} ({d['mean_a']:.4f} vs {d['mean_b']:.4f}, diff {d['mean_diff']:+.4f} [{d['ci_low']:+.4f}, "
            f"{d['ci_high']:+.4f}], p = {d['wilcoxon_p']:.3g} over {d['n_groups']} groups{'' if sig else ', not significant'})")


def _notes(scale: str, s: Sim2RealScale, dice: dict[str, Any], paired: dict[str, Any], baseline_dice: dict[str, Any],
           validity: dict[str, Any], curve: list[dict[str, Any]], fid: list[dict[str, Any]]) -> list[str]:
    kid = {r["pair"]: r["kid_mean"] for r in fid}
    notes = []
    if scale == "smoke":
        notes.append("SMOKE SCALE: translators trained for a few steps on a few dozen frames. These numbers only show that "
                     "every stage runs; they say nothing about the method.")
    best = max(("cyclegan", "munit"), key=lambda m: dice[m]["value"])
    notes += [
        f"Zero manual labels, CVC TEST ({dice['munit']['n_groups']} studies, {dice['munit']['n_frames']} frames): synthetic only "
        f"{dice['synthetic']['value']:.4f}, CycleGAN {dice['cyclegan']['value']:.4f}, MUNIT + MS-SSIM {dice['munit']['value']:.4f}. "
        f"The goal of {DICE_TARGET} is {'met' if dice[best]['value'] >= DICE_TARGET else 'NOT met'} (best: {best}).",
        f"MUNIT vs synthetic only: {_verdict(paired['munit_vs_synthetic'])}; CycleGAN vs synthetic only: "
        f"{_verdict(paired['cyclegan_vs_synthetic'])}; MUNIT vs CycleGAN: {_verdict(paired['munit_vs_cyclegan'])}.",
        "Label validity (translated validation frames vs their sources; MUNIT - CycleGAN): "
        + "; ".join(f"{label}: CycleGAN {validity[c]['cyclegan']['value']:.3f}, MUNIT {validity[c]['munit']['value']:.3f}"
                    for c, label, _ in VALIDITY_MEASURES[:1] + VALIDITY_MEASURES[3:4] + VALIDITY_MEASURES[5:6])
        + ". Read the table for intervals and tests; the claim that the MS-SSIM term keeps labels better is supported "
          "here only where MUNIT's column is higher with p < 0.05.",
        "Few real labels (Dice on CVC TEST, fine-tuned from the MUNIT segmenter vs real only): "
        + "; ".join(f"k={c['k']}: {c['finetuned']['value']:.3f} vs {c['scratch']['value']:.3f} (p {c['paired']['wilcoxon_p']:.2g})"
                    for c in curve) + ".",
        "KID to the CVC test images (lower = closer): synthetic "
        f"{kid[FID_PAIRS[0][0]]:.4f}, CycleGAN {kid[FID_PAIRS[1][0]]:.4f}, MUNIT {kid[FID_PAIRS[2][0]]:.4f}; real adapt "
        f"frames {kid[FID_PAIRS[3][0]]:.4f} (the floor).",
        f"Fixed a priori, chosen on no evaluation figure: translators at {s.crop} px crops, batch {s.batch_size}, {s.steps} steps, "
        f"last checkpoint (MUNIT dim {s.munit_dim}, {s.munit_res} residual blocks, {s.munit_d_scales}-scale discriminators; "
        f"CycleGAN ngf {s.cyclegan_ngf}, {s.cyclegan_blocks} blocks); {s.styles} MUNIT styles from CVC adapt images; "
        f"segmenters {s.seg_steps} steps, epoch chosen on the translated synthetic validation colons. The translators saw "
        "the CVC adapt images only (no mask); the curve's labelled frames are adapt frames; the test sequences were "
        "looked at once.",
        "The laparoscopy version (P2ILF: a handful of real frames) is not run by this experiment.",
    ]
    return notes


# -- figures -----------------------------------------------------------------------------------------------------------


def _figures(out: Path, translated: dict[str, dict[str, Path]], synth_val: Path, cvc_test: Path,
             translators: dict[str, Path], curve_points: dict[str, list[tuple[int, float, float, float]]]) -> list[dict[str, str]]:
    from simreal.data.contact_sheet import overlay_mask, pick_indices

    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    figures = []
    src = DatasetReader(synth_val)
    readers = {m: DatasetReader(translated[m]["val"]) for m in translated}
    rows = []
    for i in pick_indices(len(src), 6):
        sid = src.ids[i]
        row = [("synthetic", src.read(i, "image")), ("polyp mask", overlay_mask(src.read(i, "image"), src.read(i, "mask")))]
        for m, label in TRANSLATORS:
            r = readers[m]
            ids = [j for j, t in enumerate(r.ids) if t == sid or t.startswith(f"{sid}_s")]
            for n, j in enumerate(ids[:2]):
                row.append((f"{label}{'' if len(ids) == 1 else f' style {n}'}", r.read(j, "image")))
        rows.append(row)
    stages.prediction_grid(rows, fig_dir / "translations.png", "Synthetic validation frames and their translations (masks copied)")
    figures.append({"title": "Synthetic validation frames / polyp mask / CycleGAN / MUNIT styles", "path": "figures/translations.png"})

    cvc = DatasetReader(cvc_test)
    preds = {n: DatasetReader(out / "predictions" / f"seg_{n}") for n in ("synthetic", "cyclegan", "munit")}
    rows = []
    for i in pick_indices(len(cvc), 8):
        sid, rgb = cvc.ids[i], cvc.read(i, "image")
        rows.append([("CVC test", rgb), ("polyp (truth)", overlay_mask(rgb, cvc.read(i, "mask")))] + [
            (f"predicted: {n}", overlay_mask(rgb, p.read(p.ids.index(sid), "mask"))) for n, p in preds.items()])
    stages.prediction_grid(rows, fig_dir / "cvc.png", "Real CVC-ClinicDB test sequences: zero-manual-label polyp networks")
    figures.append({"title": "CVC-ClinicDB test frames: truth and the predictions of the three zero-label networks", "path": "figures/cvc.png"})

    _plot_curve(curve_points, fig_dir / "curve.png")
    figures.append({"title": "Dice on CVC TEST vs real labelled frames (with 95% CIs over studies)", "path": "figures/curve.png"})
    for m, run in translators.items():
        grids = sorted((run / "samples").glob("step_*.png"))
        if grids:
            target = fig_dir / f"samples_{m}.png"
            shutil.copyfile(grids[-1], target)
            figures.append({"title": f"Translator {m}, last step (sample grid of the engine)", "path": f"figures/{target.name}"})
    return figures


def _curve_points(curve: list[dict[str, Any]], munit: dict[str, Any]) -> dict[str, list[tuple[int, float, float, float]]]:
    """(k, Dice, CI low, CI high) per curve run (the figures :func:`_collect` computed), k = 0 being the MUNIT
    segmenter itself."""
    point = lambda k, f: (k, f["value"], f["ci_low"], f["ci_high"])  # noqa: E731
    return {"finetuned": [point(0, munit)] + [point(c["k"], c["finetuned"]) for c in curve],
            "scratch": [point(c["k"], c["scratch"]) for c in curve]}


def _plot_curve(points: dict[str, list[tuple[int, float, float, float]]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for kind, label in (("finetuned", "translated pre-training + k real"), ("scratch", "k real only")):
        pts = points[kind]
        x = [max(p[0], 1) for p in pts]  # k = 0 drawn at 1 on the log axis
        ax.errorbar(x, [p[1] for p in pts], yerr=[[p[1] - p[2] for p in pts], [p[3] - p[1] for p in pts]], marker="o",
                    capsize=3, label=label)
    ax.set_xscale("log")
    ax.set_xlabel("real labelled frames k (k = 0 drawn at 1)")
    ax.set_ylabel("polyp Dice, CVC TEST")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
