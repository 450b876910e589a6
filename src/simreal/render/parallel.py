"""The one frame runner every renderer uses: frames into an unfinished dataset, in worker processes, with a
progress bar.

A renderer supplies two module-level functions: ``init_worker(*init_args)``, which builds its scene state
once per process (meshes, Embree scenes), and ``render_one(index) -> (index, timings_ms)``, which renders
frame ``index`` and writes its files and record into the writer's ``.partial`` folder (through
:func:`~simreal.data.writer.write_sample_record`). :func:`run_frames` calls them in this process
(``workers=1``) or in ``spawn``-ed worker processes, marks every finished frame done, and draws the bar.

Why processes and an executor: Embree and numpy shading hold the GIL for little, but TBB threads exist
once a scene is built, so workers are spawned, never forked; and a ``ProcessPoolExecutor`` turns a
worker that dies (killed, out of memory) into an error instead of a pool waiting forever for its frames.
Workers ignore Ctrl-C (the parent stops the pool) and exit when their parent is gone, so a parent killed
outright leaves no worker writing into the dataset without its lock.

Given ``ray`` (a :class:`~simreal.render.ray_executor.RayCluster` or an address), the same two functions
run in Ray actors on a cluster instead (:mod:`simreal.render.ray_executor`); the rest is unchanged.
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing, contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from simreal.data.writer import DatasetWriter
from simreal.errors import SimrealError

if TYPE_CHECKING:  # pragma: no cover
    from simreal.render.ray_executor import RayCluster

#: Called in the main process after each finished frame with (frame index, timings in ms).
FrameHook = Callable[[int, dict[str, float]], None]

#: Renders one frame in a worker: index -> (index, timings in ms).
RenderOne = Callable[[int], tuple[int, dict[str, float]]]


def sample_id(index: int) -> str:
    """Zero-padded id (and file stem) of frame ``index``."""
    return f"{index:06d}"


def chunks(todo: Sequence[int], workers: int) -> list[list[int]]:
    """Frames grouped into tasks of 1-8: large enough to amortise a task's overhead, small enough that
    the workers finish together."""
    size = max(1, min(8, len(todo) // (workers * 8)))
    return [list(todo[i : i + size]) for i in range(0, len(todo), size)]


@contextmanager
def frame_progress(total: int, completed: int, progress: bool, on_frame: FrameHook | None = None,
                   writer: DatasetWriter | None = None) -> Iterator[Callable[[int, dict[str, float]], None]]:
    """A rich bar on stderr (frames done of ``total``, frames/s, time left); yields ``finished(index,
    timings)``, which marks the frame done in ``writer``, advances the bar and calls ``on_frame``."""
    from simreal.progress import progress_bar

    with progress_bar("rendering", total, enabled=progress, completed=completed, unit="frames") as bar:

        def finished(index: int, timings: dict[str, float]) -> None:
            if writer is not None:
                writer.mark_done(sample_id(index))
            bar.advance()
            if on_frame is not None:
                on_frame(index, timings)

        yield finished


def _exit_when_orphaned(parent: int) -> None:
    """Stop this worker once its parent is gone (killed outright, e.g. SIGKILL): an orphaned worker would
    otherwise keep writing into the unfinished dataset without holding its lock, then wait forever."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _start_worker(init_worker: Callable[..., None], init_args: tuple[Any, ...]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C and stops the pool
    threading.Thread(target=_exit_when_orphaned, args=(os.getppid(),), daemon=True).start()
    init_worker(*init_args)


def _render_task(render_one: RenderOne, indices: list[int]) -> list[tuple[int, dict[str, float]]]:
    return [render_one(i) for i in indices]


def run_frames(
    tasks: Sequence[Sequence[int]],
    *,
    total: int,
    writer: DatasetWriter,
    init_worker: Callable[..., None],
    init_args: tuple[Any, ...],
    render_one: RenderOne,
    teardown: Callable[[], None] = lambda: None,
    workers: int | None = 1,
    progress: bool = True,
    on_frame: FrameHook | None = None,
    ray: "RayCluster | str | None" = None,
) -> None:
    """Render the frames of ``tasks`` (lists of frame indices a worker renders in one go) into ``writer``.

    Args:
        tasks: the frames still to render, grouped (:func:`chunks`, or by scene).
        total: frames in the whole dataset (for the bar; frames kept from an interrupted run count done).
        writer: the dataset being written (frames are marked done in it).
        init_worker, init_args: builds the per-process state; module-level, picklable.
        render_one: renders and writes one frame; module-level, picklable.
        teardown: clears the per-process state after an in-process run.
        workers: processes (1 = this process); with ``ray``, Ray actors (None: one per CPU of the cluster).
        progress: draw the bar.
        on_frame: called here after each finished frame with (index, timings in ms).
        ray: render in Ray actors on this cluster (:class:`~simreal.render.ray_executor.RayCluster`, or
            an address: "local", "auto", "HOST:PORT") instead of local processes.

    Raises:
        SimrealError: a worker process died (finished frames are kept; rerunning resumes).
    """
    todo = [i for task in tasks for i in task]
    with frame_progress(total, total - len(todo), progress, on_frame, writer) as finished:
        if ray is not None:
            from simreal.render.ray_executor import ray_results

            if not todo:  # nothing left: no cluster to start or join
                return
            # closing(): an error here (Ctrl-C, on_frame) stops the actors now, not when the traceback is freed.
            with closing(ray_results(ray, tasks, root=writer.root, init_worker=init_worker, init_args=init_args,
                                     render_one=render_one, workers=workers)) as results:
                for result in results:
                    for item in result:
                        finished(*item)
            return
        workers = 1 if workers is None else workers
        if workers == 1 or len(todo) <= 1:
            init_worker(*init_args)
            try:
                for i in todo:
                    finished(*render_one(i))
            finally:
                teardown()
            return
        pool = ProcessPoolExecutor(min(workers, len(tasks)), mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(init_worker, init_args))
        try:
            for result in pool.map(functools.partial(_render_task, render_one), [list(t) for t in tasks]):
                for item in result:
                    finished(*item)
        except BrokenProcessPool:
            raise SimrealError(
                "a render worker process died; finished frames are kept, rerun the same command to resume",
                writer.root,
            ) from None
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
