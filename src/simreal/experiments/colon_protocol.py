"""The colonoscopy protocol every colonoscopy experiment shares: which anatomy trains, which chooses,
which tests, and how the real frames are split.

* **train**: ``n_train`` frames rendered from ``n_colons`` procedural colons;
* **val**: ``n_val`` frames from ``n_val_colons`` other colons. Everything that is chosen (recipes,
  epochs, checkpoints) is chosen here;
* **test**: ``n_test`` frames from ``n_test_colons`` further colons, never rendered for training or
  validation and looked at once, for the reported figures. Several colons, so that the test figures have
  a group-level n (frames of one colon are not independent);
* **CVC-ClinicDB**: real frames split into fixed "adapt" and "test" halves by study (record group: the
  video sequence, with sequences 23 and 24 together as one study), never by frame. Adaptation methods may
  use the adapt half's images, never its masks and never the test half.

Seeds: colon ``k`` of the training set is ``make_colon(seed * 1000 + k)``, validation colons are
``seed * 1000 + 500 + k`` and test colons ``seed * 1000 + 900 + k``, so no anatomy is shared between the
three sets for any preset (presets stay below 400 colons per set).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from simreal.experiments import stages

#: Fixed split of the real CVC-ClinicDB studies (record groups: video sequences, with the two sequences of one
#: study together) shared by every experiment (adaptation methods may use the "adapt" half's images, never
#: its masks, and never the "test" half).
CVC_SPLIT = {"fractions": {"adapt": 0.5, "test": 0.5}, "seed": 0}


@dataclass(frozen=True)
class ColonScale:
    """How big one run of the protocol is (frames, colons, network, epochs).

    Args:
        size: square image size of every rendered and imported frame, pixels.
        n_train, n_val, n_test: frames per set.
        n_colons, n_val_colons, n_test_colons: procedural colons per set (frame i renders colon i mod K).
        depth_epochs, seg_epochs: training epochs of the depth and the polyp network.
        batch_size, channels, lr: the U-Net training recipe (AdamW, cosine decay, flips).
    """

    size: int
    n_train: int
    n_val: int
    n_test: int
    n_colons: int
    n_val_colons: int
    n_test_colons: int
    depth_epochs: int
    seg_epochs: int
    batch_size: int
    channels: tuple[int, ...]
    lr: float = 2e-3


SCALE_PRESETS = {
    # what the test suite runs: every stage, tiny, yet enough to beat a constant depth and an empty mask
    "smoke": ColonScale(size=48, n_train=128, n_val=24, n_test=24, n_colons=2, n_val_colons=1, n_test_colons=3,
                        depth_epochs=6, seg_epochs=3, batch_size=8, channels=(8, 16, 32)),
    # this 2-core CPU, about half an hour
    "small": ColonScale(size=128, n_train=2400, n_val=240, n_test=360, n_colons=6, n_val_colons=2, n_test_colons=3,
                        depth_epochs=15, seg_epochs=10, batch_size=8, channels=(8, 16, 32, 64, 128)),
    # a GPU
    "full": ColonScale(size=256, n_train=20000, n_val=1000, n_test=2000, n_colons=20, n_val_colons=4, n_test_colons=6,
                       depth_epochs=40, seg_epochs=40, batch_size=16, channels=(32, 64, 128, 256, 512), lr=1e-3),
}


def colon_seeds(seed: int, scale: ColonScale) -> dict[str, list[int]]:
    """Procedural colon seeds of the train / val / test sets (disjoint; see the module docstring)."""
    base = seed * 1000
    return {
        "train": [base + k for k in range(scale.n_colons)],
        "val": [base + 500 + k for k in range(scale.n_val_colons)],
        "test": [base + 900 + k for k in range(scale.n_test_colons)],
    }


def render_config():
    """The forward-model settings of the protocol (a :class:`~simreal.render.config.ColonoscopyConfig`).

    Normals are not needed here: leaving them out halves disk space and write time. Polyp views are closer
    than the renderer's default, so that polyps cover a few % to a quarter of the frame, as in
    CVC-ClinicDB.
    """
    from simreal.render.config import ColonoscopyConfig, PolypViewConfig

    return ColonoscopyConfig(
        normals=False, polyp_view=PolypViewConfig(prob=0.6, distance_mm=(5.0, 30.0), distance_diameters=1.6)
    )


def render_jobs(scale: ColonScale, seed: int) -> dict:
    """The :class:`~simreal.render.job.RenderJob` of each synthetic set ("train", "val", "test")."""
    from simreal.render.job import RenderJob

    seeds = colon_seeds(seed, scale)
    config = render_config()
    sizes = {"train": scale.n_train, "val": scale.n_val, "test": scale.n_test}
    return {name: RenderJob(n=sizes[name], size=scale.size, seed=seed + k, colons=tuple(seeds[name]), config=config)
            for k, name in enumerate(("train", "val", "test"))}


def render_sets(st: stages.Stages, out: Path, jobs: dict, workers: int, prefix: str = "synth_") -> dict[str, Path]:
    """Render each job of ``jobs`` into ``OUT/data/<prefix><name>`` (a stage each), and write the job as
    ``OUT/configs/render_<name>.yaml`` first, so that ``simreal render colon --config`` on that file makes
    the same set again, byte for byte."""
    from simreal.configs import write_config_file
    from simreal.render.run import render_job

    folders = {}
    for name, job in jobs.items():
        folder = Path(out) / "data" / f"{prefix}{name}"
        write_config_file(Path(out) / "configs" / f"render_{name}.yaml", job.to_dict())
        st.run(f"render {name}", lambda folder=folder, job=job: stages.dataset_once(folder, lambda: render_job(
            folder, job, workers=workers, progress=False)))
        folders[name] = folder
    return folders


#: First colon of the realistic-look sets of the adaptation experiments, after ``seed * 1000``: "adapt"
#: colons (images only, unlabelled, train an adaptation method) and "eval" colons (labels used only to
#: measure it). Between the validation (500) and test (900) colons; :func:`realistic_colon_seeds`
#: checks that no colon is shared with the protocol's own sets.
REALISTIC_OFFSETS = {"adapt": 700, "eval": 800}


def realistic_colon_seeds(seed: int, scale: ColonScale, n_adapt_colons: int, n_eval_colons: int) -> dict[str, list[int]]:
    """Procedural colon seeds of the realistic "adapt" and "eval" sets (``seed * 1000 + 700 + k`` and
    ``seed * 1000 + 800 + k``), disjoint from each other and from the train / val / test colons.

    Raises:
        SimrealError: more than 100 colons in a set, or a colon shared with another set.
    """
    from simreal.errors import SimrealError

    if not (1 <= n_adapt_colons <= 100 and 1 <= n_eval_colons <= 100):
        raise SimrealError(f"realistic sets take 1..100 colons each, got {n_adapt_colons} / {n_eval_colons}")
    base = seed * 1000
    seeds = {"adapt": [base + REALISTIC_OFFSETS["adapt"] + k for k in range(n_adapt_colons)],
             "eval": [base + REALISTIC_OFFSETS["eval"] + k for k in range(n_eval_colons)]}
    taken = {s for v in colon_seeds(seed, scale).values() for s in v}
    shared = sorted((set(seeds["adapt"]) | set(seeds["eval"])) & taken)
    if shared:
        raise SimrealError(f"realistic colons {shared} are also train / val / test colons of this preset")
    return seeds


def realistic_jobs(scale: ColonScale, seed: int, *, n_adapt: int, n_adapt_colons: int, n_eval: int,
                   n_eval_colons: int) -> dict:
    """The render jobs of the realistic target domain (a stand-in real domain with ground-truth labels).

    * ``realistic_adapt``: ``look="realistic"`` frames of the adapt colons (an adaptation method may use
      their images, never their labels);
    * ``realistic_eval``: ``look="realistic"`` frames of the eval colons (labels used only for evaluation);
    * ``realistic_eval_training_look``: the same job in the training look: frame i is pixel-aligned with
      frame i of ``realistic_eval`` and has identical labels (same seed, the realism is drawn last), so it
      shows what a perfect mapping to the training look would give.

    Same forward-model settings as the protocol's synthetic sets (:func:`render_config`), image size of
    ``scale``.
    """
    from simreal.render.job import RenderJob

    seeds = realistic_colon_seeds(seed, scale, n_adapt_colons, n_eval_colons)
    training = render_config()
    realistic = dataclasses.replace(training, look="realistic")
    return {
        "realistic_adapt": RenderJob(n=n_adapt, size=scale.size, seed=seed + 3, colons=tuple(seeds["adapt"]), config=realistic),
        "realistic_eval": RenderJob(n=n_eval, size=scale.size, seed=seed + 4, colons=tuple(seeds["eval"]), config=realistic),
        "realistic_eval_training_look": RenderJob(n=n_eval, size=scale.size, seed=seed + 4, colons=tuple(seeds["eval"]),
                                                  config=training),
    }


@dataclass(frozen=True)
class ColonData:
    """The dataset folders of one protocol run."""

    train: Path
    val: Path
    test: Path
    cvc: Path


def prepare_data(st: stages.Stages, out: Path, scale: ColonScale, seed: int, workers: int, cvc_src: Path) -> ColonData:
    """Render the three synthetic sets and import CVC-ClinicDB (stages; a rerun reuses finished ones)."""
    from simreal.data.external.cvc import import_cvc

    folders = render_sets(st, out, render_jobs(scale, seed), workers)
    cvc = Path(out) / "data" / "cvc"
    st.run("import CVC-ClinicDB", lambda: stages.dataset_once(cvc, lambda: import_cvc(cvc_src, cvc, size=scale.size)))
    return ColonData(train=folders["train"], val=folders["val"], test=folders["test"], cvc=cvc)


def training_options(scale: ColonScale, seed: int, data: ColonData) -> dict[str, Any]:
    """Keyword arguments of :func:`~simreal.tasks.train.train_from_kwargs` shared by both networks.

    Validation is the held-out validation colons; cosine decay and flips made the depth network's
    validation error steadier than a constant learning rate.
    """
    return dict(size=scale.size, batch_size=scale.batch_size, channels=scale.channels, lr=scale.lr,
                schedule="cosine", augment=True, seed=seed, val=str(data.val))


def cvc_halves(cvc_dir: Path) -> dict[str, list[int]]:
    """Record indices of the CVC-ClinicDB "adapt" and "test" halves (split by group, :data:`CVC_SPLIT`)."""
    from simreal.data.reader import DatasetReader
    from simreal.data.splits import sequence_split

    reader = DatasetReader(cvc_dir)
    return sequence_split([r.group for r in reader.records], **CVC_SPLIT)


#: Version of the protocol's data choices that no preset value shows (colon seeds, render config, CVC
#: grouping); bumped when they change, so an experiment folder made under the old protocol is refused.
PROTOCOL_VERSION = 2


def scale_arguments(scale_name: str, scale: ColonScale) -> dict[str, Any]:
    """What an experiment folder remembers of its scale: the name AND the preset's values (and the protocol
    version), so a folder made under an older preset or protocol is never silently reused."""
    return {"scale": scale_name, "preset": dataclasses.asdict(scale), "protocol": PROTOCOL_VERSION}


#: First colon of the sets of the cinematic fine-tuning experiment, after ``seed * 1000``: CT phantoms of
#: procedural colons ("patients") whose cinematic renders fine-tune (600 + k), choose the checkpoint
#: (640 + k) or test (660 + k), and the colons of its external realistic-look test domain (300 + k).
#: :func:`cinematic_colon_seeds` checks them against every other set.
CINEMATIC_OFFSETS = {"finetune": 600, "val": 640, "test": 660, "external": 300}
#: Most colons each cinematic set may take (so the sets stay inside their own block of seeds).
CINEMATIC_CAPACITY = {"finetune": 40, "val": 20, "test": 40, "external": 100}


def cinematic_colon_seeds(seed: int, scale: ColonScale, counts: dict[str, int]) -> dict[str, list[int]]:
    """Procedural colon seeds of the cinematic fine-tuning experiment: ``seed * 1000 + offset + k`` for the
    "finetune", "val", "test" and "external" sets (:data:`CINEMATIC_OFFSETS`).

    They are disjoint from each other, from the protocol's train / val / test colons and from the realistic
    "adapt" / "eval" blocks of the adaptation experiments (``seed * 1000 + 700`` to ``+ 899``), so no anatomy
    of this experiment is used anywhere else.

    Args:
        seed: the experiment seed.
        scale: the baseline's scale (whose colons must be avoided).
        counts: colons per set, e.g. ``{"finetune": 6, "val": 2, "test": 6, "external": 8}``.

    Raises:
        SimrealError: an unknown set, a count outside 1..capacity, or a colon shared with another set.
    """
    from simreal.errors import SimrealError

    unknown = sorted(set(counts) - set(CINEMATIC_OFFSETS))
    if unknown:
        raise SimrealError(f"unknown cinematic set(s) {', '.join(unknown)}; known: {', '.join(CINEMATIC_OFFSETS)}")
    for name, n in counts.items():
        if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= CINEMATIC_CAPACITY[name]:
            raise SimrealError(f"the cinematic {name} set takes 1..{CINEMATIC_CAPACITY[name]} colons, got {n!r}")
    base = seed * 1000
    seeds = {name: [base + CINEMATIC_OFFSETS[name] + k for k in range(n)] for name, n in counts.items()}
    taken = {s for v in colon_seeds(seed, scale).values() for s in v}
    taken |= set(range(base + REALISTIC_OFFSETS["adapt"], base + REALISTIC_OFFSETS["eval"] + 100))
    mine = {s for v in seeds.values() for s in v}
    shared = sorted(mine & taken)
    if shared:
        raise SimrealError(f"cinematic colons {shared} are also colons of another set of this preset")
    return seeds


def external_realistic_job(scale: ColonScale, seed: int, *, n: int, colons: list[int]):
    """The :class:`~simreal.render.job.RenderJob` of an external test domain: ``look="realistic"`` frames
    (:mod:`simreal.render.look`) of ``colons`` in the protocol's forward-model settings
    (:func:`render_config`) at the scale's image size, with ground-truth depth."""
    from simreal.render.job import RenderJob

    config = dataclasses.replace(render_config(), look="realistic")
    return RenderJob(n=n, size=scale.size, seed=seed + 5, colons=tuple(colons), config=config)
