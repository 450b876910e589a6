"""SimGAN's image history buffer: past refined images that keep the discriminator from forgetting.

Shrivastava et al. (2017): each discriminator batch takes half of its refined images from the current
refiner and half from a buffer of images refined earlier; after each step, new refined images go into
the buffer, replacing random old ones once it is full. Without it the refiner can revisit artefacts the
discriminator has forgotten.

A public port's buffer never fills (``np.append`` without assigning its result: methods.md 5.4); this
one is tested to fill, to stay bounded at ``capacity``, and to come back unchanged from a checkpoint.

Storage: images are kept as float16 on the device of the images pushed (half the memory of float32 and
still 16x finer than one 8-bit grey level in [-1, 1]), grown by doubling up to ``capacity`` so that a
large capacity costs memory only once it is used: 12800 RGB images of 64x64 take 315 MB. The buffer is an
``nn.Module`` whose contents travel in its ``state_dict`` (``get_extra_state``), so they are saved in
every checkpoint and restored on resume.

Example:
    >>> buf = HistoryBuffer(capacity=4)
    >>> buf.push(torch.zeros(3, 1, 2, 2)); buf.push(torch.ones(3, 1, 2, 2))
    >>> len(buf), buf.sample(2).shape
    (4, torch.Size([2, 1, 2, 2]))
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from simreal.errors import SimrealError


class HistoryBuffer(nn.Module):
    """A bounded pool of past images.

    Args:
        capacity: most images kept (12800 in both public SimGAN ports); 0 disables the buffer.
        dtype: storage type.
    """

    def __init__(self, capacity: int = 12800, dtype: torch.dtype = torch.float16):
        super().__init__()
        if capacity < 0:
            raise SimrealError(f"history buffer capacity must be >= 0, got {capacity}")
        self.capacity = int(capacity)
        self.dtype = dtype
        self._data: torch.Tensor | None = None  # (allocated, C, H, W); rows [0, count) are images
        self._count = 0

    def __len__(self) -> int:
        return self._count

    @property
    def full(self) -> bool:
        return self._count >= self.capacity

    def images(self) -> torch.Tensor | None:
        """All stored images, (len, C, H, W) in the storage dtype, or None when empty."""
        return None if self._data is None or self._count == 0 else self._data[: self._count]

    def push(self, images: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Add (N, C, H, W) images: appended while there is room, then each replaces a random stored one.

        Args:
            images: detached images; stored as float16 on their own device.
            generator: for the replaced slots (default: torch's global RNG, which the engine reseeds at
                every step).
        """
        if self.capacity == 0 or images.shape[0] == 0:
            return
        if images.ndim != 4:
            raise SimrealError(f"history buffer stores (N, C, H, W) images, got shape {tuple(images.shape)}")
        images = images.detach().to(self.dtype)
        if self._data is not None:
            if self._data.shape[1:] != images.shape[1:]:
                raise SimrealError(
                    f"history buffer holds {tuple(self._data.shape[1:])} images, cannot add {tuple(images.shape[1:])}"
                )
            if self._data.device != images.device:
                self._data = self._data.to(images.device)
        n = images.shape[0]
        room = self.capacity - self._count
        appended = min(n, room)
        if appended:
            self._reserve(self._count + appended, images)
            self._data[self._count : self._count + appended] = images[:appended]
            self._count += appended
        rest = images[appended:]
        if rest.shape[0]:
            # Distinct random slots, so one push never overwrites its own images.
            k = min(rest.shape[0], self.capacity)
            slots = torch.randperm(self.capacity, generator=generator)[:k].to(images.device)
            self._data[slots] = rest[-k:]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` distinct stored images (at most ``len(self)``), drawn uniformly; (n, C, H, W) float16."""
        if self._count == 0:
            raise SimrealError("cannot sample from an empty history buffer")
        n = min(int(n), self._count)
        idx = torch.randperm(self._count, generator=generator)[:n].to(self._data.device)
        return self._data[idx]

    def _reserve(self, needed: int, like: torch.Tensor) -> None:
        allocated = 0 if self._data is None else self._data.shape[0]
        if needed <= allocated:
            return
        size = min(self.capacity, max(needed, 2 * allocated, 64))
        grown = torch.empty((size, *like.shape[1:]), dtype=self.dtype, device=like.device)
        if self._data is not None and self._count:
            grown[: self._count] = self._data[: self._count]
        self._data = grown

    def get_extra_state(self) -> dict[str, Any]:
        images = self.images()
        # clone(): saving a view would write the whole allocation, unused rows included.
        return {
            "capacity": self.capacity,
            "count": self._count,
            "images": None if images is None else images.detach().clone().cpu(),
        }

    def set_extra_state(self, state: dict[str, Any]) -> None:
        if int(state.get("capacity", -1)) != self.capacity:
            raise SimrealError(
                f"checkpoint history buffer has capacity {state.get('capacity')}, this method {self.capacity}"
            )
        images = state.get("images")
        self._count = int(state.get("count", 0))
        if images is None or self._count == 0:
            self._data, self._count = None, 0
            return
        device = self._data.device if self._data is not None else images.device
        self._data = None
        self._reserve(self._count, images.to(device))
        self._data[: self._count] = images.to(device=device, dtype=self.dtype)

    def extra_repr(self) -> str:
        return f"capacity={self.capacity}, len={self._count}, dtype={self.dtype}"
