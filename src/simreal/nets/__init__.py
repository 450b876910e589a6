"""Plain ``nn.Module`` networks with typed constructors (no Lightning, no I/O)."""

from simreal.nets.unet import UNet

__all__ = ["UNet"]
