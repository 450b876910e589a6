"""Plain ``nn.Module`` networks with typed constructors (no Lightning, no I/O): the task U-Net, and the
building blocks of the adversarial methods (ResNet blocks, the SimGAN refiner, local and multi-scale
patch discriminators, the pix2pixHD two-head global generator)."""

from simreal.nets.blocks import ResnetBlock
from simreal.nets.discriminators import MultiScaleDiscriminator, PatchDiscriminator, SimGANLocalDiscriminator
from simreal.nets.pix2pixhd import GlobalGenerator, conditional_discriminator
from simreal.nets.refiner import SimGANRefiner
from simreal.nets.unet import UNet

__all__ = ["GlobalGenerator", "MultiScaleDiscriminator", "PatchDiscriminator", "ResnetBlock", "SimGANLocalDiscriminator", "SimGANRefiner", "UNet", "conditional_discriminator"]

# Sim-to-real translators (CycleGAN's ResNet generator; MUNIT's encoders, AdaIN decoder, generators, discriminator).
from simreal.nets.discriminators import MUNITPatchDiscriminator  # noqa: E402
from simreal.nets.generators import ResnetGenerator  # noqa: E402
from simreal.nets.munit import AdaINGenerator, ContentEncoder, Decoder, StyleEncoder, StylelessGenerator  # noqa: E402

__all__ += ["AdaINGenerator", "ContentEncoder", "Decoder", "MUNITPatchDiscriminator", "ResnetGenerator", "StyleEncoder", "StylelessGenerator"]
