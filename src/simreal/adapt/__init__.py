"""Domain adaptation by adversarial training: one engine, small method objects, apply to datasets.

* :mod:`simreal.adapt.engine`: :func:`~simreal.adapt.engine.fit`, the one Lightning loop (manual
  optimisation) that runs every adversarial method, with run folders, exact resume, logs and sample grids.
* :mod:`simreal.adapt.method`: :class:`~simreal.adapt.method.AdversarialMethod`, the protocol a method
  implements (``configure_optimizers``, ``training_step(batch, step)``, ``sample(batch)``).
* :mod:`simreal.adapt.reverse`: reverse domain adaptation (SimGAN refiner, local discriminator, history
  buffer, self-regularisation): :class:`~simreal.adapt.reverse.ReverseDA`, ``train_reverse``.
* :mod:`simreal.adapt.munit`: sim-to-real translation with Pfeiffer et al.'s MUNIT extension (MS-SSIM on
  brightness keeps the labels valid): :class:`~simreal.adapt.munit.MUNIT`, ``train_munit``.
* :mod:`simreal.adapt.cyclegan`: the CycleGAN baseline: :class:`~simreal.adapt.cyclegan.CycleGAN`, ``train_cyclegan``.
* :mod:`simreal.adapt.translate`: translate a dataset with a trained translator (K styles, random or from
  real images), labels copied byte for byte, styles recorded.
* :mod:`simreal.adapt.losses`: adversarial, self-regularisation, MS-SSIM-on-brightness and LSGAN losses
  (pure functions).
* :mod:`simreal.adapt.history`: the image history buffer.
* :mod:`simreal.adapt.data`: unpaired image sources sampled by (seed, step).
* :mod:`simreal.adapt.apply`: refine a dataset or image folder with a trained run, labels copied as is.

Submodules are imported on demand: ``simreal.adapt.losses`` does not pull in Lightning.
"""
