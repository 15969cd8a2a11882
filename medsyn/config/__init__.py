"""Strict, typed configuration shared by every workflow and bundle (issue 11 item 3).

- ``medsyn.config.strict``: parse plain mappings into frozen dataclasses; unknown keys name their path and
  the nearest valid key, ill-typed values the expected type; command-line ``true``/``false``/``null``;
  ``strict_arguments`` for workflow entry points. Depends on nothing else in medsyn (the bottom layer).
- ``medsyn.config.data``: the [data] sections, options checked against each reader's signature.
- ``medsyn.config.generators``: generator overrides checked against the model config and training keys.
- ``medsyn.config.sections``: the evaluation sections (utility, privacy, fidelity, speed, ...) and defaults.
- ``medsyn.config.bundle``: the ``initialize`` check every bundle runs against unreferenced top-level keys.

Nothing is imported here, so ``medsyn.training.settings`` can use ``strict`` without loading the sections.
"""
