"""The method protocol: what an adversarial method gives the one training engine.

A method is a small ``nn.Module`` holding its networks (as submodules) and anything else it must resume
with (an image history buffer, via ``get_extra_state``), so ``method.state_dict()`` is its whole state
apart from the optimisers. It defines:

* :meth:`AdversarialMethod.configure_optimizers` -> ``{name: optimizer}`` (one per network or group);
* :meth:`AdversarialMethod.training_step` ``(batch, step) -> {name: scalar tensor}``: one training
  iteration, which does its own backward passes and optimiser steps through :meth:`update` (or
  :meth:`optimizer` + :meth:`backward` to sum several backward passes into one step): any number of
  updates per network (k_D discriminator and k_G generator steps), pre-training phases and learning-rate
  schedules chosen by ``step`` (:func:`phase_of`, :meth:`set_lr`); it returns the detached losses to log;
* :meth:`AdversarialMethod.sample` ``(batch) -> {column: images}``: images in [0, 1] for a sample grid
  (one column per entry, one row per image).

The engine (:mod:`simreal.adapt.engine`) binds its optimisers and its backward function with :meth:`bind`
before each step (Lightning's manual optimisation, which adds mixed-precision loss scaling and DDP gradient
sync); unbound, a method makes its own plain PyTorch optimisers, so it also runs in a plain ``for`` loop::

    method = ReverseDA(channels=3, ngf=8, n_blocks=2)
    for step in range(10):
        logs = method.training_step(batch_for(step), step)

Randomness: inside the engine, torch's, numpy's and Python's global RNGs are reseeded at every step from
(seed, step, rank), so a method may draw noise from them and still resume exactly.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, ClassVar, Iterator, Mapping, Sequence

import torch
from torch import nn

from simreal.errors import SimrealError


class AdversarialMethod(nn.Module):
    """Base class of the methods the adversarial engine runs.

    Class attributes:
        name: the method's name, written into run folders and checkpoints (``"reverse"``).
        inference_modules: submodules needed to apply a trained model (``adapt apply`` loads only these).
        size_multiple: image sides must be multiples of this at inference (1 = any size; translators
            with k down-samplings need 2**k and are padded and cropped back).
        progress_keys: logged losses the progress bar shows (empty: all of them).
    """

    name: ClassVar[str] = ""
    inference_modules: ClassVar[tuple[str, ...]] = ()
    size_multiple: ClassVar[int] = 1
    progress_keys: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        super().__init__()
        self._bound_optimizers: dict[str, torch.optim.Optimizer] | None = None
        self._backward: Callable[[torch.Tensor], None] | None = None

    # -- what a method defines ---------------------------------------------------------------------------

    def configure_optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """One optimiser per name (the engine checkpoints them in this order)."""
        raise NotImplementedError

    def training_step(self, batch: Mapping[str, torch.Tensor], step: int) -> dict[str, torch.Tensor]:
        """One training iteration (0-based ``step``); returns detached scalar losses to log."""
        raise NotImplementedError

    def sample(self, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Grid columns: name -> (N, C, H, W) images in [0, 1]; called under ``torch.no_grad()`` in eval mode."""
        raise NotImplementedError

    # -- stepping, bound by the engine -------------------------------------------------------------------

    def bind(self, optimizers: Mapping[str, torch.optim.Optimizer] | None, backward: Callable[[torch.Tensor], None] | None) -> None:
        """Use these optimisers (e.g. Lightning's wrappers) and this backward function in :meth:`update`;
        ``bind(None, None)`` returns to plain PyTorch ones."""
        self._bound_optimizers = None if optimizers is None else dict(optimizers)
        self._backward = backward

    def optimizer(self, name: str) -> torch.optim.Optimizer:
        """The optimiser called ``name`` (made by :meth:`configure_optimizers` when none are bound)."""
        if self._bound_optimizers is None:
            self._bound_optimizers = self.configure_optimizers()
        try:
            return self._bound_optimizers[name]
        except KeyError:
            raise SimrealError(f"method {self.name!r} has no optimiser {name!r} (it has: {', '.join(self._bound_optimizers)})") from None

    def backward(self, loss: torch.Tensor) -> None:
        """Backpropagate ``loss`` (through the engine's backward when bound: loss scaling, DDP sync)."""
        if self._backward is None:
            loss.backward()
        else:
            self._backward(loss)

    def update(self, name: str, loss: torch.Tensor) -> None:
        """Zero the gradients of optimiser ``name``, backpropagate ``loss``, step."""
        opt = self.optimizer(name)
        opt.zero_grad(set_to_none=True)
        self.backward(loss)
        opt.step()

    def set_lr(self, name: str, lr: float) -> None:
        """Set every parameter group's learning rate of optimiser ``name``.

        Learning-rate schedules belong in :meth:`training_step` as a pure function of ``step`` (e.g.
        ``self.set_lr("generator", lr0 * 0.5 ** (step // 100_000))``): they then resume exactly with no
        scheduler state to checkpoint.
        """
        for group in self.optimizer(name).param_groups:
            group["lr"] = float(lr)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Turn off weight gradients of ``modules`` inside the block (gradients still flow *through* them).

    A generator update backpropagates through the discriminator; freezing it skips computing the
    discriminator's weight gradients, which the generator's optimiser would never use.
    """
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def phase_of(step: int, phases: Sequence[tuple[str, int]], final: str) -> str:
    """The training phase that ``step`` falls in.

    Args:
        step: 0-based iteration.
        phases: (name, length) in order, e.g. ``[("pretrain_r", 1000), ("pretrain_d", 200)]``.
        final: the phase after them all (e.g. ``"adversarial"``).

    Example:
        >>> phase_of(1100, [("pretrain_r", 1000), ("pretrain_d", 200)], "adversarial")
        'pretrain_d'
    """
    start = 0
    for name, length in phases:
        if step < start + length:
            return name
        start += length
    return final


def mean_logs(logs: Sequence[Mapping[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Average several updates' logs key by key (a key absent from some is averaged over the others)."""
    out: dict[str, list[torch.Tensor]] = {}
    for entry in logs:
        for k, v in entry.items():
            out.setdefault(k, []).append(v.detach().float())
    return {k: torch.stack(v).mean() for k, v in out.items()}
