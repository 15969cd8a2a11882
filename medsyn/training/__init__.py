"""Training infrastructure shared by every generator (import the submodules directly):

- ``loop``: ``run_training(TrainingRun, train, step_fn)`` — seeded batches, tqdm losses, atomic checkpoints
  every N steps and at the end, exact resume, DDP sharding, Poisson batches for DP-SGD.
- ``batches``: ``ShuffledBatches``, ``PoissonBatches``, ``shard_batch`` (resumable batch orders).
- ``checkpoint``: ``save_checkpoint`` / ``load_checkpoint`` (weights-only, SHA-256 checked before unpickling;
  refuse a damaged file, a non-weight object, another model's or config's checkpoint).
- ``settings``: ``TrainingSettings`` (steps, batch_size, checkpoint_every, dp, device), ``DPSettings``,
  ``config_from_mapping`` (strict, unknown keys named), ``generator_checkpoint_config``.
- ``dp``: Opacus DP-SGD (paper 001 §3.1): ``make_module_private_compatible``, ``make_private``, ``epsilon``,
  ``default_delta``, ``per_sample_mean``, ``discriminator_hooks_disabled`` (GAN: private discriminator only).
- ``distributed``: torchrun/DDP helpers; ``device``: ``resolve_device``; ``ema``: ``ExponentialMovingAverage``.
"""
