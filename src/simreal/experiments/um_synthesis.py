"""The ``um-synthesis`` experiment: unsupervised-mask-guided CT synthesis ("Less Is More", methods.md section 3)
against the baseline guided by manual masks, on the real liver CT in ``shared/data``.

Both generators output a CT slice AND its liver segmentation (:mod:`simreal.synth.um`). Protocol:

1. **Volumes, split by patient** (never by slice): the three CT volumes with MANUAL liver masks,
   3D-IRCADb patients 1 and 7 (DICOM series, DICOM masks) and CHAOS (DICOM series, PNG masks), are prepared
   as axial slices (HU window [-1500, 100], the liver's z-range; :func:`~simreal.synth.prepare.prepare_ct_dataset`).
   Patient ``ircadb1`` trains; ``ircadb7`` and ``chaos`` are held out for every measurement. (TotalSegmentator's
   example CT is left out: its liver label is a model's, not a manual one.)
2. **Few manual labels**: ``labelled`` of the training patient's slices keep their manual mask (spread evenly
   over its z-range); the rest are unlabelled.
3. **Guidance**: SLIC superpixels of each slice, mean-filled and quantised, plus edge maps
   (:func:`~simreal.synth.masks.make_mask_dataset`; the paper's defaults scaled to the slice size).
4. **Generators** on the shared adversarial engine: "um" (superpixel guidance; labelled slices supervised,
   unlabelled ones with the D-masked teacher pseudo-labels) and "mask" (guided by the manual masks of the
   labelled slices only). Same sizes, steps and seed; the last checkpoint is used.
5. **Samples**: ``n_samples`` slices of each, from perturbed guidance of the training slices (affine, elastic,
   level jitter: :mod:`simreal.synth.sample`), so they are not copies; a memorisation check gives each
   sample's distance to its nearest training slice beside the same for held-out real slices.
6. **Fidelity and variety** against the held-out real slices: MM-FID and MM-STD over ``mm_scales`` (offline
   FID Inception-v3; both the released row-L2 aggregation and the plain mean), FID and KID; the training
   patient's slices against the held-out ones give the real-vs-real floor.
7. **Utility**: a liver U-Net pre-trained on each generator's samples and fine-tuned on the labelled real
   slices, against the same network trained on the labelled real slices only, the same number of steps each.
   No validation set exists (every labelled slice trains), so the epoch with the lowest training loss is
   kept; nothing is chosen on a held-out figure. Dice on the held-out patients' slices, paired per slice and
   tested on patient means.

**Power.** There are two held-out volumes. A two-sided Wilcoxon signed-rank test on two patient means cannot
give p below 0.5, so no difference here can be significant at the group level, whatever its size; the
frame-level test beside it treats the slices of one patient as independent, which they are not.

Scales (every number is reported with its scale):

* ``smoke``: what the tests run: 32 px slices (every 8th), tiny networks, a few steps.
* ``small``: this 2-core CPU: 128 px slices (every 2nd), generators ngf 16 with 3 down-samplings and 3 blocks,
  1500 steps each, 400 samples, segmenters 600 steps; MM-FID at 128 and 256 px.
* ``full``: a GPU: 512 px slices, the paper's generator (ngf 64, 4 down-samplings, 9 blocks), MM-FID at 128 to
  1024 px.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable


from simreal.data.reader import DatasetReader
from simreal.errors import SimrealError
from simreal.experiments import stages
from simreal.experiments.environment import environment
from simreal.experiments.report import write_report

#: The volumes of the experiment: patient id -> (CT, labels), relative to the real-data folder; all MANUAL masks.
VOLUMES = {
    "ircadb1": ("ircadb_ct_liver/patient1/PATIENT_DICOM", "ircadb_ct_liver/patient1/MASKS_DICOM/liver"),
    "ircadb7": ("ircadb_ct_liver/patient7/PATIENT_DICOM", "ircadb_ct_liver/patient7/MASKS_DICOM/liver"),
    "chaos": ("chaos_ct_liver/DICOM_anon", "chaos_ct_liver/Ground"),
}
TRAIN_PATIENTS = ("ircadb1",)
HELDOUT_PATIENTS = ("ircadb7", "chaos")
#: The generators compared, in table order (method, label).
GENERATORS = (("um", "UM-guided (superpixels)"), ("mask", "mask-guided (manual masks)"))


@dataclass(frozen=True)
class UMSynthesisScale:
    """How big one run of the experiment is.

    Args:
        size: slice side in pixels (slices padded to a square with air and resized).
        every: keep every k-th slice of the liver's z-range.
        labelled: training slices with a manual mask (``synth train --labelled``: "20%", "10", "all").
        n_segments: SLIC superpixels per slice (the paper's 512 per 1024 px montage is about 128 per 512 px slice).
        ngf, n_downsample, n_blocks, ndf: the generator and discriminator sizes.
        steps: training steps of each generator.
        batch_size: slices per generator mini-batch.
        n_samples: synthetic slices drawn from each generator.
        seg_steps: optimisation steps of every segmentation run (pre-training and fine-tuning each).
        seg_batch_size: images per segmentation step.
        seg_channels: the U-Net's channels.
        mm_scales: square sizes of MM-FID / MM-STD (the Inception needs at least 75 px).
    """

    size: int
    every: int
    labelled: str
    n_segments: int
    ngf: int
    n_downsample: int
    n_blocks: int
    ndf: int
    steps: int
    batch_size: int
    n_samples: int
    seg_steps: int
    seg_batch_size: int
    seg_channels: tuple[int, ...]
    mm_scales: tuple[int, ...]

    def __post_init__(self) -> None:
        problems = []
        for name in ("size", "every", "n_segments", "ngf", "n_blocks", "ndf", "steps", "batch_size", "n_samples", "seg_steps",
                     "seg_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                problems.append(f"{name}: expected an integer >= 1, got {v!r}")
        if self.size % (2 ** self.n_downsample):
            problems.append(f"size: must be a multiple of 2**n_downsample = {2 ** self.n_downsample}, got {self.size}")
        if not self.mm_scales or min(self.mm_scales) < 75:
            problems.append(f"mm_scales: the Inception needs sides >= 75 px, got {self.mm_scales!r}")
        if problems:
            raise SimrealError("um-synthesis preset: " + "; ".join(problems))


UM_PRESETS = {
    "smoke": UMSynthesisScale(size=32, every=8, labelled="25%", n_segments=32, ngf=4, n_downsample=2, n_blocks=1, ndf=4,
                              steps=4, batch_size=2, n_samples=12, seg_steps=4, seg_batch_size=4, seg_channels=(4, 8),
                              mm_scales=(96,)),
    "small": UMSynthesisScale(size=128, every=2, labelled="20%", n_segments=64, ngf=16, n_downsample=3, n_blocks=3, ndf=16,
                              steps=1500, batch_size=2, n_samples=400, seg_steps=600, seg_batch_size=8,
                              seg_channels=(8, 16, 32, 64, 128), mm_scales=(128, 256)),
    "full": UMSynthesisScale(size=512, every=1, labelled="10%", n_segments=128, ngf=64, n_downsample=4, n_blocks=9, ndf=64,
                             steps=60000, batch_size=2, n_samples=2000, seg_steps=20000, seg_batch_size=8,
                             seg_channels=(32, 64, 128, 256, 512), mm_scales=(128, 256, 512, 1024)),
}


def volume_cases(real_data: Path | None) -> list:
    """The :class:`~simreal.synth.prepare.CTCase` of every volume of :data:`VOLUMES`.

    Raises:
        SimrealError: a volume's CT or labels missing (named).
    """
    from simreal.data.real_data import real_data_folder
    from simreal.synth.prepare import CTCase

    cases = []
    for group, (ct, labels) in VOLUMES.items():
        folder = real_data_folder(ct.split("/")[0], real_data)
        paths = (folder.parent / ct, folder.parent / labels)
        for p in paths:
            if not p.exists():
                raise SimrealError(f"CT volume {group!r} is incomplete", p)
        cases.append(CTCase(ct=str(paths[0]), labels=str(paths[1]), group=group))
    return cases


def run_um_synthesis(*, out: Path, scale: str, seed: int = 0, workers: int = 2, real_data: Path | None = None,
                     log: Callable[[str], None] = print, preset: Any = None) -> dict[str, Any]:
    """Run the UM-synthesis protocol into ``out``; returns the results (also written as results.json).

    Args:
        out: the experiment folder (a rerun with the same arguments reuses finished stages).
        scale: "smoke", "small" or "full" (:data:`UM_PRESETS`).
        seed: seed of the guidance perturbations and of all training.
        workers: unused (no rendering); accepted like every experiment's.
        real_data: folder holding ``ircadb_ct_liver/`` and ``chaos_ct_liver/`` (default: $SIMREAL_DATA, else
            ../shared/data).
        log: where stage progress lines go.
        preset: not supported (the colonoscopy presets do not apply here).

    Raises:
        SimrealError: a volume missing (before any work), a ``--config`` preset, or ``out`` holding a run with
            other arguments.
    """
    from simreal.adapt.config import EngineConfig
    from simreal.metrics.evaluate import evaluate_seg
    from simreal.synth.masks import MaskConfig, make_mask_dataset
    from simreal.synth.memorisation import memorisation_from_run
    from simreal.synth.prepare import PrepareConfig, prepare_ct_dataset
    from simreal.synth.sample import sample_from_run
    from simreal.synth.um import train_synth
    from simreal.synth.um_config import SynthDataConfig, SynthRunConfig, UMConfig
    from simreal.tasks.predict import predict
    from simreal.tasks.train import train_from_kwargs

    if preset is not None:
        raise SimrealError("um-synthesis takes no colonoscopy 'preset' from --config; use --scale")
    u = UM_PRESETS[scale]
    cases = volume_cases(real_data)  # refused before any work
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    st = stages.Stages(out, {"experiment": "um-synthesis", "scale": scale, "um": dataclasses.asdict(u), "seed": seed,
                             "volumes": [[c.group, str(Path(c.ct).resolve()), str(Path(c.labels).resolve())] for c in cases]}, log)

    data = out / "data"
    slices, guided = data / "slices", data / "slices_guided"
    st.run("prepare CT slices", lambda: stages.dataset_once(slices, lambda: prepare_ct_dataset(
        cases, slices, PrepareConfig(labels=("liver",), size=u.size, every=u.every))))
    st.run("superpixel guidance", lambda: stages.dataset_once(guided, lambda: make_mask_dataset(
        slices, guided, MaskConfig(n_segments=u.n_segments))))
    reader = DatasetReader(guided)
    heldout_idx = [i for i, r in enumerate(reader.records) if r.group in HELDOUT_PATIENTS]
    train_idx = [i for i, r in enumerate(reader.records) if r.group in TRAIN_PATIENTS]
    heldout, train_real = data / "heldout", data / "train_patient"
    st.run("held-out slices", lambda: stages.dataset_once(heldout, lambda: stages.subset_dataset(
        guided, heldout, heldout_idx, kinds=("image", "ct", "mask"), why=f"held-out patients {', '.join(HELDOUT_PATIENTS)}")))
    st.run("training-patient slices", lambda: stages.dataset_once(train_real, lambda: stages.subset_dataset(
        guided, train_real, train_idx, kinds=("image", "ct", "mask"), why="the training patient's slices (real-vs-real floor)")))

    # -- the two generators ------------------------------------------------------------------------------------
    runs_dir = out / "runs"
    gen_runs: dict[str, Path] = {}
    for method, _ in GENERATORS:
        run = runs_dir / f"generator_{method}"
        config = SynthRunConfig(
            out=str(run), method=method,
            data=SynthDataConfig(data=str(guided), groups=TRAIN_PATIENTS, labelled=u.labelled, batch_size=u.batch_size),
            um=UMConfig(ngf=u.ngf, n_downsample=u.n_downsample, n_blocks=u.n_blocks, ndf=u.ndf),
            engine=EngineConfig(steps=u.steps, seed=seed, checkpoint_every=max(1, min(u.steps, 500)),
                                sample_every=max(1, u.steps // 4), log_every=max(1, min(10, u.steps // 4)), n_samples=4,
                                devices="1"))
        st.run(f"train generator {method}", lambda config=config: train_synth(config, progress=False))
        gen_runs[method] = run
    labelled = {m: json.loads((gen_runs[m] / "data.json").read_text())["labelled"] for m in gen_runs}
    if labelled["um"] != labelled["mask"]:
        raise SimrealError("the two generators were given different labelled slices", runs_dir)
    labelled_real = data / "labelled_real"
    position = {sid: i for i, sid in enumerate(reader.ids)}
    st.run("labelled real slices", lambda: stages.dataset_once(labelled_real, lambda: stages.subset_dataset(
        guided, labelled_real, [position[s] for s in labelled["um"]], kinds=("image", "mask"),
        why=f"the {len(labelled['um'])} manually labelled training slices ({u.labelled})")))

    samples: dict[str, Path] = {}
    for method, _ in GENERATORS:
        dest = data / f"samples_{method}"
        st.run(f"sample {method}", lambda method=method, dest=dest: stages.dataset_once(dest, lambda: sample_from_run(
            gen_runs[method], dest, n=u.n_samples, seed=seed, device="auto")))
        samples[method] = dest

    # -- fidelity, variety, memorisation -----------------------------------------------------------------------
    evals = out / "eval"
    st.run("MM-FID", lambda: _mm_fid_all({**samples, "real (training patient)": train_real}, heldout, u, evals / "mmfid.json"))
    fid_sets = {"held-out real": heldout, "training patient": train_real, **{f"samples {m}": p for m, p in samples.items()}}
    st.run("FID and KID", lambda: stages.image_set_distances(fid_sets, FID_PAIRS, out, 10**9, evals / "fid.json"))
    for method, _ in GENERATORS:
        st.run(f"memorisation {method}", lambda method=method: _memorisation(
            memorisation_from_run(gen_runs[method], samples[method], heldout), evals / f"memorisation_{method}.json"))

    # -- utility ----------------------------------------------------------------------------------------------------
    seg_common = dict(size=u.size, batch_size=u.seg_batch_size, channels=u.seg_channels, schedule="cosine", augment=True,
                      seed=seed, val_fraction=0.0)
    seg_runs: dict[str, Path] = {}
    n_labelled = len(labelled["um"])
    for method, _ in GENERATORS:
        pre, fine = runs_dir / f"seg_pretrain_{method}", runs_dir / f"seg_{method}"
        epochs = stages.epochs_for_steps(u.n_samples, u.seg_steps, u.seg_batch_size)
        st.run(f"pretrain seg {method}", lambda pre=pre, method=method, epochs=epochs: train_from_kwargs(
            "seg", samples[method], pre, progress=False, epochs=epochs, **seg_common))
        st.run(f"finetune seg {method}", lambda pre=pre, fine=fine: train_from_kwargs(
            "seg", labelled_real, fine, progress=False, init=str(pre), lr=5e-4,
            epochs=stages.epochs_for_steps(n_labelled, u.seg_steps, u.seg_batch_size), **seg_common))
        seg_runs[method] = fine
    real_only = runs_dir / "seg_real_only"
    st.run("train seg real only", lambda: train_from_kwargs(
        "seg", labelled_real, real_only, progress=False, epochs=stages.epochs_for_steps(n_labelled, u.seg_steps, u.seg_batch_size),
        **seg_common))
    seg_runs["real_only"] = real_only
    preds = out / "predictions"
    for name, run in seg_runs.items():
        dest = preds / f"seg_{name}"
        st.run(f"predict held-out {name}", lambda run=run, dest=dest: stages.dataset_once(
            dest, lambda: predict(run, heldout, dest, progress=False)))
        st.run(f"eval held-out {name}", lambda name=name, dest=dest: evaluate_seg(dest, heldout, evals / f"seg_{name}"))

    results = _collect(out, u, scale, seed, cases, gen_runs, samples, labelled["um"], st.timings)
    stages.write_results(out, results)
    write_report(out)
    return results


#: Pairs of :func:`~simreal.experiments.stages.image_set_distances` (label, set A, set B).
FID_PAIRS = (
    ("UM-guided samples vs held-out real", "samples um", "held-out real"),
    ("mask-guided samples vs held-out real", "samples mask", "held-out real"),
    ("training patient vs held-out real (real vs real: the floor)", "training patient", "held-out real"),
)


def _mm_fid_all(sets: dict[str, Path], reference: Path, u: UMSynthesisScale, dest: Path) -> dict[str, Any]:
    """MM-FID / MM-STD of every set against ``reference`` (the held-out real slices), written to ``dest``."""
    import torch

    from simreal.data.writer import write_json
    from simreal.metrics.mmfid import mm_fid

    device = "cuda" if torch.cuda.is_available() else "cpu"
    results = {name: mm_fid(reference, path, scales=u.mm_scales, device=device, fid_method="eigh").to_dict()
               for name, path in sets.items()}
    write_json(dest, results)
    return results


def _memorisation(report: Any, dest: Path) -> None:
    from simreal.data.writer import write_json

    write_json(dest, {"summary": report.summary, "rows": report.rows()})


# -- results -------------------------------------------------------------------------------------------------------


def _ci(f: dict[str, Any]) -> str:
    return f"{f['value']:.4f} [{f['ci_low']:.3f}, {f['ci_high']:.3f}]"


def _collect(out: Path, u: UMSynthesisScale, scale: str, seed: int, cases: list, gen_runs: dict[str, Path],
             samples: dict[str, Path], labelled: list[str], timings: dict[str, Any]) -> dict[str, Any]:
    evals = out / "eval"
    mm = json.loads((evals / "mmfid.json").read_text())
    fid = json.loads((evals / "fid.json").read_text())
    memo = {m: json.loads((evals / f"memorisation_{m}.json").read_text())["summary"] for m, _ in GENERATORS}
    rows = {n: stages.read_rows(evals / f"seg_{n}") for n in ("um", "mask", "real_only")}
    dice = {n: stages.group_figure(r, "dice_liver") for n, r in rows.items()}
    paired = {"um_vs_mask": stages.paired_figure(rows["um"], rows["mask"], "dice_liver"),
              "um_vs_real_only": stages.paired_figure(rows["um"], rows["real_only"], "dice_liver"),
              "mask_vs_real_only": stages.paired_figure(rows["mask"], rows["real_only"], "dice_liver")}
    heldout = DatasetReader(out / "data" / "heldout")
    n_heldout = {g: sum(r.group == g for r in heldout.records) for g in HELDOUT_PATIENTS}

    mm_table = []
    for name, label in (("um", "UM-guided samples"), ("mask", "mask-guided samples"), ("real (training patient)", "real slices of the training patient (floor)")):
        r = mm[name]
        mm_table.append({"set": label, "MM-FID (row-L2, released)": r["all_aggregates"]["l2-row"]["mm_fid"],
                         "MM-STD (row-L2)": r["all_aggregates"]["l2-row"]["mm_std"],
                         "MM-FID (mean, absolute)": r["all_aggregates"]["mean"]["mm_fid"],
                         "MM-STD (mean)": r["all_aggregates"]["mean"]["mm_std"],
                         **{f"FID at {s} px": r["fid"][0][j] for j, s in enumerate(r["scales"])},
                         "n_a (held-out real)": r["n_a"], "n_b": r["n_b"]})
    fid_table = [{k: r[k] for k in ("pair", "n_a", "n_b", "fid", "kid_mean", "kid_std")} for r in fid]
    memo_table = [{"generator": label, **{k: v for k, v in memo[m].items() if not isinstance(v, (dict, list))}} for m, label in GENERATORS]
    dice_table = [{"segmenter": what, "Dice [95% CI, patients resampled]": _ci(dice[n]), "slice mean": dice[n]["frame_mean"],
                   "n_groups": dice[n]["n_groups"], "n_frames": dice[n]["n_frames"]} for n, what in (
        ("um", "UM-guided samples, then the labelled real slices"), ("mask", "mask-guided samples, then the labelled real slices"),
        ("real_only", "the labelled real slices only"))]
    paired_table = []
    for key, label in (("um_vs_mask", "A = UM-guided, B = mask-guided"), ("um_vs_real_only", "A = UM-guided, B = real only"),
                       ("mask_vs_real_only", "A = mask-guided, B = real only")):
        d = paired[key]
        fl = d["frame_level"]
        paired_table.append({"comparison": label, "A": d["mean_a"], "B": d["mean_b"],
                             "A - B [95% CI]": f"{d['mean_diff']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]",
                             "Wilcoxon p (patient means)": d["wilcoxon_p"],
                             "slice level (assumes independent slices): diff, p": f"{fl['mean_diff']:+.4f}, p={fl['wilcoxon_p']:.3g}",
                             "n_groups": d["n_groups"], "n_frames": d["n_frames"]})
    um_mm, mask_mm = mm["um"]["all_aggregates"]["mean"]["mm_fid"], mm["mask"]["all_aggregates"]["mean"]["mm_fid"]
    d = paired["um_vs_mask"]
    targets = [
        {"target": "MM-FID (mean over scales, absolute): UM-guided below mask-guided (lower = closer to the held-out real slices)",
         "value": um_mm, "threshold": f"< {mask_mm:.4g}", "met": bool(um_mm < mask_mm)},
        {"target": f"utility: UM-guided Dice above mask-guided with a patient-level Wilcoxon p < 0.05 (n_groups={d['n_groups']})",
         "value": d["mean_diff"], "threshold": "> 0, p < 0.05", "met": bool(d["mean_diff"] > 0 and d["wilcoxon_p"] < 0.05)},
    ]
    fl = d["frame_level"]
    notes = []
    if scale == "smoke":
        notes.append("SMOKE SCALE: tiny generators trained for a few steps. These numbers only show that every stage runs; "
                     "they say nothing about the method.")
    notes += [
        f"Real volumes with manual liver masks: {len(cases)} in all; {len(TRAIN_PATIENTS)} trains ({len(labelled)} of its slices "
        f"labelled, {u.labelled}), {len(HELDOUT_PATIENTS)} are held out ({', '.join(f'{g}: {n} slices' for g, n in n_heldout.items())}). "
        "With two held-out patients a two-sided Wilcoxon test on patient means cannot reach p < 0.5, so the paper's claim "
        "(UM better at p < 0.05) cannot be tested at the patient level here; the slice-level test beside it assumes "
        "independent slices.",
        f"Utility (Dice on the held-out slices): UM-guided {dice['um']['value']:.4f}, mask-guided {dice['mask']['value']:.4f}, "
        f"real only {dice['real_only']['value']:.4f}; UM - mask {d['mean_diff']:+.4f}, patient-level p {d['wilcoxon_p']:.3g}, "
        f"slice-level p {fl['wilcoxon_p']:.3g} ({d['n_frames']} slices).",
        f"MM-FID (mean over the scales {list(u.mm_scales)} px) against the held-out slices: UM {um_mm:.4g}, mask {mask_mm:.4g}, "
        f"real training patient {mm['real (training patient)']['all_aggregates']['mean']['mm_fid']:.4g} (floor). The released "
        "row-L2 aggregation is in the table too, but it L2-normalises each extractor's row over the scales and so erases the "
        "size of the FIDs (one scale always gives 1): it is shown for comparison with published numbers, not to rank.",
        "Memorisation: each sample's distance to its nearest training slice beside the held-out real slices' (table).",
        f"Fixed a priori: generators ngf {u.ngf}, {u.n_downsample} down-samplings, {u.n_blocks} blocks, {u.steps} steps, last "
        f"checkpoint; {u.n_samples} samples each (affine + elastic + jitter perturbations); segmenters {u.seg_steps} steps per "
        "stage, lowest-training-loss epoch (no validation set exists). The held-out patients were looked at once.",
    ]
    return {
        "name": "um-synthesis",
        "scale": scale,
        "summary": (f"UM-guided vs mask-guided CT + liver-mask synthesis at scale {scale!r}, trained on one patient's slices "
                    f"with {u.labelled} manual labels; fidelity (MM-FID, MM-STD, FID, KID) and utility (Dice) on two held-out "
                    "patients."),
        "targets": targets,
        "tables": [
            {"title": "MM-FID and MM-STD against the held-out real slices", "columns": list(mm_table[0]), "rows": mm_table,
             "note": "Lower MM-FID = closer to the real slices; higher MM-STD = more varied. Row-L2 is the released code's "
                     "aggregation (scale-free: it ranks nothing), mean the plain one; both from the same FID matrix (offline "
                     "FID Inception-v3)."},
            {"title": "FID and KID against the held-out real slices", "columns": ["pair", "n_a", "n_b", "fid", "kid_mean", "kid_std"],
             "rows": fid_table, "note": "At these n FID is biased upwards; read KID."},
            {"title": "Utility: liver Dice on the held-out patients' slices", "columns": list(dice_table[0]), "rows": dice_table},
            {"title": "Utility: paired comparisons", "columns": list(paired_table[0]), "rows": paired_table,
             "note": "Groups are patients: with 2 of them no group-level p can fall below 0.5."},
            {"title": "Memorisation: nearest-training-slice distances", "columns": list(memo_table[0]), "rows": memo_table},
        ],
        "figures": _figures(out, samples, out / "data" / "heldout"),
        "notes": notes,
        "metrics": {"mmfid": mm, "fid": fid, "memorisation": memo, "dice": dice, "paired": paired, "n_heldout": n_heldout,
                    "n_labelled": len(labelled)},
        "config": {"um": dataclasses.asdict(u), "seed": seed, "train_patients": list(TRAIN_PATIENTS),
                   "heldout_patients": list(HELDOUT_PATIENTS), "labelled_ids": labelled,
                   "volumes": {c.group: [str(c.ct), str(c.labels)] for c in cases},
                   "generators": {m: json.loads((run / "config.json").read_text()) for m, run in gen_runs.items()}},
        "environment": environment(),
        "timings": {**timings, "total (stages run now)": round(sum(v for v in timings.values() if isinstance(v, float)), 2)},
    }


def _figures(out: Path, samples: dict[str, Path], heldout: Path) -> list[dict[str, str]]:
    from simreal.data.contact_sheet import overlay_mask, pick_indices

    fig_dir = out / "figures"
    fig_dir.mkdir(exist_ok=True)
    rows = []
    readers = {"held-out real": DatasetReader(heldout), **{f"samples {m}": DatasetReader(p) for m, p in samples.items()}}
    for k in range(4):
        row = []
        for name, r in readers.items():
            i = pick_indices(len(r), 4)[k % len(pick_indices(len(r), 4))]
            img = r.read(i, "image")
            row += [(name, img), (f"{name}: liver mask", overlay_mask(img, r.read(i, "mask")))]
        rows.append(row)
    stages.prediction_grid(rows, fig_dir / "samples.png", "Held-out real slices and synthetic slices with their masks")
    return [{"title": "Held-out real CT slices / UM-guided samples / mask-guided samples, each with its liver mask",
             "path": "figures/samples.png"}]
