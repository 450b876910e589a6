"""Ray as the frame runner's other executor: the same ``init_worker`` / ``render_one`` of a renderer, run in
Ray actors on a cluster instead of local processes.

:func:`~simreal.render.parallel.run_frames` hands its tasks here when it is given a :class:`RayCluster`.
Each actor calls the renderer's ``init_worker(*init_args)`` once (the init arguments go through Ray's
object store once, not once per actor) and then renders whole tasks with ``render_one``; Ray's
:class:`~ray.util.ActorPool` feeds the tasks to whichever actor is free. Frames are written by the actors
straight into the writer's ``.partial`` folder, exactly as local workers write them, so the bytes, the
resume (finished frames are kept) and the atomicity (every file written atomically; the dataset renamed
into place by the driver, which holds its lock) are the local ones. Because of that, every node of a
cluster must see the output folder at the same path (shared storage) and run the same simreal: both are
checked before the first frame, with an error that says which.

Actors are owned by this process: if it dies, Ray ends them (fate sharing), so no worker keeps writing
into a dataset whose lock is gone (a task already running may still finish its frames first: complete,
atomically written frames that the resumed run keeps). A local instance this module starts is shut down
when the run ends; a cluster it connects to is only disconnected from.

Example:
    >>> from simreal.render.run import render_colon_dataset
    >>> render_colon_dataset("renders/colon", n=1000, size=256, seed=0, ray=RayCluster())  # doctest: +SKIP
    >>> render_colon_dataset("renders/colon", n=1000, size=256, seed=0,
    ...                      ray=RayCluster("10.0.0.5:6379"), workers=64)               # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

from simreal.errors import SimrealError

if TYPE_CHECKING:  # pragma: no cover
    from simreal.render.parallel import RenderOne

__all__ = ["RayCluster", "as_cluster", "check_reachable", "connect", "ray_results"]

#: ``RayCluster.address`` of a new Ray instance on this machine for the run (``--ray local``).
LOCAL = "local"


@dataclass(frozen=True)
class RayCluster:
    """Where to render with Ray.

    Args:
        address: ``"local"`` starts a new Ray instance on this machine for the run (and stops it after);
            ``"auto"`` connects to the instance already running here (``ray start --head``, or
            ``RAY_ADDRESS``); ``"HOST:PORT"`` (a head node's GCS address) or ``"ray://HOST:PORT"`` (Ray
            Client) connects to that cluster.
        num_cpus: CPUs of a local instance (None: every CPU of this machine); ignored for a cluster.

    Raises:
        SimrealError: an empty address or ``num_cpus < 1``.
    """

    address: str = LOCAL
    num_cpus: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.address, str) or not self.address.strip():
            raise SimrealError(f"Ray address must be 'local', 'auto' or HOST:PORT, got {self.address!r}")
        if self.num_cpus is not None and (isinstance(self.num_cpus, bool) or int(self.num_cpus) < 1):
            raise SimrealError(f"Ray num_cpus must be at least 1, got {self.num_cpus}")


def as_cluster(ray: "RayCluster | str") -> RayCluster:
    """A :class:`RayCluster` from itself or from an address string."""
    return ray if isinstance(ray, RayCluster) else RayCluster(str(ray))


def check_reachable(cluster: RayCluster, timeout_s: float = 5.0) -> None:
    """Fail fast when nothing listens at a cluster's HOST:PORT (``ray.init`` itself retries for minutes).

    ``"local"`` and ``"auto"`` are not probed (a local instance is started; ``auto`` fails by itself).

    Raises:
        SimrealError: a malformed address, or no answer at it within ``timeout_s`` (naming the address).
    """
    import socket

    if cluster.address in (LOCAL, "auto"):
        return
    hostport = cluster.address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise SimrealError(f"Ray address must be 'local', 'auto', HOST:PORT or ray://HOST:PORT, got {cluster.address!r}")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise SimrealError(f"cannot reach a Ray cluster at {cluster.address!r} ({reason}); start one with "
                           "`ray start --head`, or pass --ray without an address for a local one") from None


@contextmanager
def connect(cluster: RayCluster, *, num_cpus: int | None = None) -> Iterator[Any]:
    """Ray, initialised for ``cluster``, for the duration of the block; yields the ``ray`` module.

    If this process already called ``ray.init`` (a notebook, a test), that session is used as it is and
    left running. Otherwise a local instance is started (``"local"``) or the cluster is connected to; at
    the end the instance is stopped or the connection closed.

    Args:
        cluster: where.
        num_cpus: CPUs of a new local instance when ``cluster.num_cpus`` is None (None: all of them).

    Raises:
        SimrealError: Ray is not installed, or no cluster answers at the address (naming it).
    """
    try:
        import ray
    except ImportError:  # pragma: no cover - ray is a dependency of simreal
        raise SimrealError("Ray is not installed; `pip install ray` to render with --ray") from None
    if ray.is_initialized():
        yield ray
        return
    check_reachable(cluster)
    options: dict[str, Any] = dict(log_to_driver=False, logging_level=logging.WARNING)
    if cluster.address == LOCAL:
        options.update(num_cpus=cluster.num_cpus or num_cpus or os.cpu_count() or 1, include_dashboard=False)
    try:
        ray.init(address=cluster.address, **options)
    except Exception as exc:  # noqa: BLE001 - Ray raises plain Exception when a local instance fails to start
        ray.shutdown()  # stops whatever of a local instance did start
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        if cluster.address == LOCAL:
            raise SimrealError(f"cannot start a local Ray instance: {first}") from None
        hint = ""
        if cluster.address != "auto" and os.environ.get("RAY_AUTH_MODE") is None:
            hint = ("; if the cluster uses Ray's token authentication (its default), set RAY_AUTH_MODE=token and its "
                    "token (RAY_AUTH_TOKEN, or ~/.ray/auth_token): Ray never enables it for an explicit address")
        raise SimrealError(f"cannot reach a Ray cluster at {cluster.address!r}: {first}{hint}") from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _worker_class(ray: Any) -> Any:
    """The Ray actor class: one renderer's per-process state, rendering whole tasks."""

    @ray.remote(num_cpus=1)
    class FrameWorker:
        def __init__(self, root: str, init_worker: Callable[..., None], init_args: tuple[Any, ...]):
            from simreal import __version__

            self.version = __version__
            self.problem: str | None = None
            if not (Path(root) / "records").is_dir():
                self.problem = (f"the Ray worker on node {ray.util.get_node_ip_address()} cannot see the unfinished "
                                f"dataset {root}: frames are written by the workers, so the output folder must be on "
                                "storage every node mounts at the same path")
                return
            init_worker(*init_args)

        def ready(self) -> tuple[str, str | None]:
            return self.version, self.problem

        def render(self, render_one: "RenderOne", indices: list[int]) -> list[tuple[int, dict[str, float]]]:
            return [render_one(i) for i in indices]

    return FrameWorker


def ray_results(
    ray_cluster: "RayCluster | str",
    tasks: Sequence[Sequence[int]],
    *,
    root: Path,
    init_worker: Callable[..., None],
    init_args: tuple[Any, ...],
    render_one: "RenderOne",
    workers: int | None = None,
) -> Iterator[list[tuple[int, dict[str, float]]]]:
    """Render ``tasks`` in Ray actors; yields each finished task's ``[(index, timings in ms), ...]`` as it
    comes (in any order: a frame's bytes do not depend on when or where it is rendered).

    Args:
        ray_cluster: where (a :class:`RayCluster` or an address).
        tasks: lists of frame indices, one actor call each.
        root: the writer's ``.partial`` folder (every actor must see it).
        init_worker, init_args, render_one: the renderer's per-process hooks (module-level, picklable).
        workers: actors (one CPU each; None: one per CPU of the cluster, or of a new local instance).

    Raises:
        SimrealError: no cluster at the address, more workers than the cluster has CPUs, a node that
            cannot see ``root`` or runs another simreal, or a worker that died (finished frames are kept).
    """
    from simreal import __version__

    cluster = as_cluster(ray_cluster)
    with connect(cluster, num_cpus=workers) as ray:
        from ray.exceptions import RayActorError, RayTaskError
        from ray.util import ActorPool

        cpus = int(ray.cluster_resources().get("CPU", 0))
        n = workers if workers is not None else cpus
        if n < 1 or n > cpus:
            raise SimrealError(f"{n} Ray workers asked for, but the Ray cluster at {cluster.address!r} has {cpus} CPUs "
                               "(each worker takes one)")
        n = max(1, min(n, len(tasks)))
        worker = _worker_class(ray)
        shared = ray.put(init_args)  # once into the object store, not once per actor
        actors = [worker.remote(str(root), init_worker, shared) for _ in range(n)]
        submitted: list[Any] = []  # every task handed to an actor (ActorPool hands them out as actors free up)
        try:
            try:
                for version, problem in ray.get([a.ready.remote() for a in actors]):
                    if problem:
                        raise SimrealError(problem)
                    if version != __version__:
                        raise SimrealError(f"a Ray node runs simreal {version}, this process {__version__}: install "
                                           "the same simreal on every node (the bytes depend on it)")

                def submit(actor: Any, task: Sequence[int]) -> Any:
                    ref = actor.render.remote(render_one, list(task))
                    submitted.append(ref)
                    return ref

                yield from ActorPool(actors).map_unordered(submit, list(tasks))
            except RayTaskError as exc:
                if isinstance(exc.cause, SimrealError):
                    raise exc.cause from None
                raise
            except RayActorError:
                raise SimrealError(
                    "a Ray render worker died; finished frames are kept, rerun the same command to resume", root,
                ) from None
        finally:
            _stop(ray, actors, submitted)


def _stop(ray: Any, actors: list[Any], submitted: list[Any], timeout_s: float = 300.0) -> None:
    """Let the tasks already running finish (as a local pool's ``shutdown(wait=True, cancel_futures=True)``
    does; tasks not yet handed to an actor never start), then kill the actors: killing is asynchronous, and a
    task it has not reached yet would go on writing frames without the lock. A task still running after
    ``timeout_s`` is killed anyway."""
    if submitted:
        ray.wait(submitted, num_returns=len(submitted), timeout=timeout_s)
    for a in actors:
        ray.kill(a)
