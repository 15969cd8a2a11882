"""The typed config sections of medsyn's workflows: one frozen dataclass per YAML section, holding its defaults.

    privacy = parse_section(AssessmentPrivacy, {"q": 20}, path="privacy")
    privacy.q, privacy.repeats          # 20, 10 (PAPER_REPEATS, paper 000 §4.1.6)

Every default is written once: either here (cited), or as a named constant of the metric or model that
defines it (``PAPER_Q``, ``DEEPFOOL_STEPS``, ``KID_DEFAULTS``, ``CLASSIFIER_HYPERPARAMETERS``, ...), which
the fields below take as their default. The bundle YAMLs hold overrides where a bundle departs from these.
Unknown keys, ill-typed values and the command-line strings ``true`` / ``false`` / ``null`` follow
``medsyn.config.strict``; range checks live in each section's ``__post_init__``.

Sections by workflow (the key path in the bundle YAML in brackets):

- assessment: ``AssessmentData`` [data], ``SyntheticSet*`` [synthetic_sets.<name>], ``UtilitySection``
  [utility] with ``ClassifierSection`` [utility.classifier], ``RobustnessSection`` [robustness],
  ``AssessmentPrivacy`` [privacy] with ``EmpiricalEpsilonSection`` [privacy.empirical_epsilon],
  ``FidelitySection`` [fidelity] with ``KIDSection`` [fidelity.kid], ``SpeedSection`` [speed].
- DP sweep: ``DataSection`` [data], ``ClassifierSection`` [classifier], ``SweepEmpiricalEpsilon``
  [empirical_epsilon].
- quickstart: ``QuickstartData`` [data], ``QuickstartModel`` [models.<name>], ``SpeedSection`` [speed],
  ``ClassifierSection`` [classifier], ``QuickstartPrivacy`` [privacy].
- generator bundles: ``DataSection`` [data]; model_config is the model's own config dataclass
  (``medsyn.models.*Config``) and the training keys ``medsyn.training.settings.TrainingSettings``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from medsyn.config.data import AssessmentData, DataSection, QuickstartData
from medsyn.config.generators import parse_generator_overrides
from medsyn.config.strict import (
    ConfigError,
    check_minimum,
    join_path,
    parse_section,
    section_to_dict,
    unknown_key_message,
)
from medsyn.metrics.features.extract import DEFAULT_EXTRACTOR, FEATURE_BATCH_SIZE
from medsyn.metrics.kid import KID_DEFAULTS
from medsyn.metrics.prdc import DEFAULT_K as PRDC_K
from medsyn.metrics.privacy.empirical_epsilon import (
    DEFAULT_ISOMAP_NEIGHBORS,
    DEFAULT_ISOMAP_NOISE_SIGMAS,
    DEFAULT_ISOMAP_PER_CLASS,
    DEFAULT_K,
    DEFAULT_N_COMPONENTS,
    DEFAULT_N_QUERIES,
    DEFAULT_SAMPLES_PER_CLASS,
)
from medsyn.metrics.privacy.ssim_max_protocol import PAPER_Q, PAPER_REPEATS
from medsyn.metrics.privacy.ssim_max_protocol import SCANS as SSIM_SCANS
from medsyn.metrics.robustness import DEEPFOOL_STEPS
from medsyn.metrics.robustness.policy import check_engine
from medsyn.models.classifiers import DEFAULT_CLASSIFIER
from medsyn.models.geometric_augmentation import GeometricAugmentation
from medsyn.training.batch_loader import DEFAULT_NUM_WORKERS
from medsyn.training.dp_grid import PAPER_SIGMAS

__all__ = [
    "MULTIPLIERS",
    "PAPER_PER_CLASS",
    "PAPER_SEEDS",
    "PAPER_SIGMAS",
    "AssessmentData",
    "AssessmentPrivacy",
    "ClassifierSection",
    "DataSection",
    "EmpiricalEpsilonSection",
    "FidelitySection",
    "KIDSection",
    "QuickstartData",
    "QuickstartModel",
    "QuickstartPrivacy",
    "RobustnessSection",
    "SpeedSection",
    "SweepEmpiricalEpsilon",
    "SyntheticSetCheckpoint",
    "SyntheticSetFolder",
    "SyntheticSetGenerator",
    "UtilitySection",
    "parse_classifier",
    "parse_quickstart_models",
    "parse_seeds",
    "parse_sigmas",
    "parse_sweep_empirical_epsilon",
    "parse_synthetic_sets",
]


# --- protocol constants of the papers (one place; the sections below and the evaluation layer take them) -----

# Paper 000 §4.1.4: synthetic sets of 1, 2 and 3 times the real training size.
MULTIPLIERS: tuple[int, ...] = (1, 2, 3)
# Paper 001 §4 (Fig. 10): the DP-SGD noise multipliers of the sweep and its scarcity level (images per class).
# PAPER_SIGMAS (001 §4.2) is defined once in medsyn/training/dp_grid.py and imported above.
PAPER_PER_CLASS = 10


# --- classifiers, utility, robustness --------------------------------------------------------------------------


@dataclass(frozen=True)
class ClassifierSection:
    """The downstream classifier (paper 000 §4.1.4, Appendix A). epochs / batch_size / lr left null take the
    arch's paper values (``medsyn.models.classifiers.CLASSIFIER_HYPERPARAMETERS``, Appendix A); top_k: with
    k > 1 also top-k accuracy and top-k adversarial accuracy (``top3_accuracy``; paper 000 §5.2 uses 3 for
    CheXpert; 1: top-1 only); num_workers: DataLoader worker processes reading the training batches (0: in
    process; no number depends on it); geometric_da: the ranges of the Geometric DA / Combined DA transforms
    (``medsyn.models.geometric_augmentation.GeometricAugmentation``: rotation in [-15, 15] degrees, each flip
    with p 0.5; paper 000 §4.1.4 names the transforms but no range)."""

    arch: str = DEFAULT_CLASSIFIER
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    top_k: int = 1
    num_workers: int = DEFAULT_NUM_WORKERS
    geometric_da: GeometricAugmentation = field(default_factory=GeometricAugmentation)

    def __post_init__(self) -> None:
        from medsyn.models.classifiers import classifier_hyperparameters

        try:
            classifier_hyperparameters(self.arch)
        except ValueError as error:
            raise ConfigError(f"arch: {error}") from error
        check_minimum(self, "epochs", "batch_size", "top_k")
        check_minimum(self, "num_workers", minimum=0)
        if self.lr is not None and not self.lr > 0:
            raise ConfigError(f"lr: must be > 0, got {self.lr!r}")

    def settings(self) -> dict[str, Any]:
        """Keyword arguments of ``train_classifier`` (arch, epochs, batch_size, lr, num_workers, geometric_da)
        with the paper values filled in."""
        from medsyn.models.classifiers import classifier_hyperparameters

        hyper = classifier_hyperparameters(self.arch)
        return {
            "arch": self.arch,
            "epochs": hyper.epochs if self.epochs is None else self.epochs,
            "batch_size": hyper.batch_size if self.batch_size is None else self.batch_size,
            "lr": hyper.lr if self.lr is None else self.lr,
            "num_workers": self.num_workers,
            "geometric_da": self.geometric_da.to_dict(),
        }

    def as_mapping(self) -> dict[str, Any]:
        """The classifier mapping ``medsyn.evaluation.utility_regimes.run_utility`` takes (the paper values filled in)."""
        return {**self.settings(), "top_k": self.top_k}


def parse_classifier(value: Any, path: str) -> dict[str, Any]:
    """A [classifier] mapping as ``ClassifierSection.as_mapping()`` (arch, epochs, batch_size, lr, num_workers, top_k),
    the arch's paper values filled in (a ``strict_arguments`` section parser)."""
    return parse_section(ClassifierSection, value, path=path).as_mapping()


def parse_sweep_empirical_epsilon(value: Any, path: str) -> dict[str, Any] | None:
    """[empirical_epsilon] of the DP sweep as a complete dict, or None (null: not measured)."""
    return None if value is None else section_to_dict(parse_section(SweepEmpiricalEpsilon, value, path=path))


@dataclass(frozen=True)
class UtilitySection:
    """[utility] of the assessment: the classifier and the synthetic multipliers (paper 000 §4.1.4: 1x, 2x, 3x)."""

    classifier: ClassifierSection = field(default_factory=ClassifierSection)
    multipliers: tuple[int, ...] = MULTIPLIERS

    def __post_init__(self) -> None:
        if not self.multipliers or any(m < 1 for m in self.multipliers):
            raise ConfigError(f"multipliers: expected positive integers, got {list(self.multipliers)}")


@dataclass(frozen=True)
class RobustnessSection:
    """[robustness]: DeepFool iterations (paper 000 §4.1.5; ``DEEPFOOL_STEPS``) and the attack engine:
    "autograd" (the reference, any model and device), "sequential" (the CPU accelerator for nn.Sequential
    classifiers) or "auto" (sequential only where ``medsyn.metrics.robustness.policy`` measured it to pay).
    Every engine gives the same adversarial accuracy up to float rounding."""

    steps: int = DEEPFOOL_STEPS
    engine: str = "auto"

    def __post_init__(self) -> None:
        check_minimum(self, "steps")
        try:
            check_engine(self.engine)
        except ValueError as error:
            raise ValueError(f"robustness.{error}") from None


# --- privacy ---------------------------------------------------------------------------------------------------


def _check_empirical_epsilon(section: Any) -> None:
    check_minimum(section, "samples_per_class", "k", "n_components", "isomap_neighbors", "isomap_per_class")
    check_minimum(section, "query_class", minimum=0)
    if any(not sigma > 0 for sigma in section.isomap_noise_sigmas):
        raise ConfigError(f"isomap_noise_sigmas: expected numbers > 0, got {list(section.isomap_noise_sigmas)}")


@dataclass(frozen=True)
class EmpiricalEpsilonSection:
    """[privacy.empirical_epsilon] of the assessment (paper 001 §3.2; generator sets only). The defaults are
    the authors' (``medsyn.metrics.privacy.empirical_epsilon``, which cites their code).

    n_queries: queries of the query class; one victim generator per query and one ablated per seed.
    query_class: null: the paper's class for MNIST (0), OCTMNIST (0), OrganAMNIST (3) (§4.2.1, §4.3.1), else
        the least frequent class; an integer: that class.
    samples_per_class: synthetic images per class drawn from the victim and the ablated generator.
    k: kNN density; n_components, isomap_neighbors: the Isomap; isomap_per_class: its fit set's cap of real
        training images per class (seeded, stratified); isomap_noise_sigmas: noisy copies added to the fit set.
    """

    enabled: bool = True
    n_queries: int = DEFAULT_N_QUERIES
    query_class: int | None = None
    samples_per_class: int = DEFAULT_SAMPLES_PER_CLASS
    k: int = DEFAULT_K
    n_components: int = DEFAULT_N_COMPONENTS
    isomap_neighbors: int = DEFAULT_ISOMAP_NEIGHBORS
    isomap_per_class: int = DEFAULT_ISOMAP_PER_CLASS
    isomap_noise_sigmas: tuple[float, ...] = DEFAULT_ISOMAP_NOISE_SIGMAS

    def __post_init__(self) -> None:
        check_minimum(self, "n_queries")
        _check_empirical_epsilon(self)


@dataclass(frozen=True)
class SweepEmpiricalEpsilon:
    """[empirical_epsilon] of the DP sweep (paper 001 §3.2, Fig. 10(c)); null in the YAML skips it. One query
    per (seed, sigma); the keys as in ``EmpiricalEpsilonSection``. samples_per_class must be given (it sets the
    cost); k may not exceed it."""

    samples_per_class: int
    query_class: int | None = None
    k: int = DEFAULT_K
    n_components: int = DEFAULT_N_COMPONENTS
    isomap_neighbors: int = DEFAULT_ISOMAP_NEIGHBORS
    isomap_per_class: int = DEFAULT_ISOMAP_PER_CLASS
    isomap_noise_sigmas: tuple[float, ...] = DEFAULT_ISOMAP_NOISE_SIGMAS

    def __post_init__(self) -> None:
        _check_empirical_epsilon(self)
        if self.k > self.samples_per_class:
            raise ConfigError(f"k: must not exceed samples_per_class ({self.samples_per_class}), got {self.k}")


# Seeds of a multi-seed protocol: 3 seeds -> mean and 90% CI (paper 001 Fig. 10 "0.9 confidence intervals")
PAPER_SEEDS: tuple[int, ...] = (0, 1, 2)



def parse_seeds(value: Any, path: str = "seeds") -> list[int]:
    """[seeds] of a multi-seed protocol: a non-empty list of distinct integers (a ``strict_arguments`` parser)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ConfigError(f"{path}: expected a non-empty list of integers, got {value!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in value) or len(set(value)) != len(value):
        raise ConfigError(f"{path}: expected distinct integers, got {list(value)}")
    return list(value)


def parse_sigmas(value: Any, path: str = "sigmas") -> list[float]:
    """[sigmas] of the DP sweep: distinct finite noise multipliers >= 0 (0: no DP-SGD), returned ascending."""
    import math

    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or len(value) == 0:
        raise ConfigError(f"{path}: expected a non-empty list of noise multipliers >= 0, got {value!r}")
    for sigma in value:
        if isinstance(sigma, bool) or not isinstance(sigma, (int, float)) or not math.isfinite(sigma) or sigma < 0:
            raise ConfigError(f"{path}: expected finite numbers >= 0, got {sigma!r} in {list(value)}")
    sigmas = [float(sigma) for sigma in value]
    if len(set(sigmas)) != len(sigmas):
        raise ConfigError(f"{path}: expected distinct values, got {sigmas}")
    return sorted(sigmas)


# Sentinel of AssessmentPrivacy.dcr_feature_extractor: the first of fidelity.extractors (pixel space only if none).
FIRST_FIDELITY_EXTRACTOR = "first_fidelity_extractor"


@dataclass(frozen=True)
class AssessmentPrivacy:
    """[privacy] of the assessment.

    q, repeats: SSIM-max protocol (paper 000 §4.1.6; ``PAPER_Q``, ``PAPER_REPEATS``).
    ssim_scan: "full" (every synthetic image: ``ssim_max_full`` and a gallery of the whole set) or "paper"
        (only the images the protocol draws; ``ssim_max_paper`` is the same, the full scan's m x n pairs are
        skipped: hours at paper scale on a CPU, see ``medsyn.metrics.privacy.ssim_max_protocol``).
    gallery_top: synthetic images shown in the privacy gallery (medsyn's choice).
    dcr_feature_extractor: DCR feature space besides pixel space (paper 001 §3.2); the default is the
        first of fidelity.extractors; null: pixel space only.
    """

    q: int = PAPER_Q
    repeats: int = PAPER_REPEATS
    ssim_scan: str = "full"
    gallery_top: int = 16
    dcr_feature_extractor: str | None = FIRST_FIDELITY_EXTRACTOR
    empirical_epsilon: EmpiricalEpsilonSection = field(default_factory=EmpiricalEpsilonSection)

    def __post_init__(self) -> None:
        check_minimum(self, "q", "repeats", "gallery_top")
        if self.ssim_scan not in SSIM_SCANS:
            raise ConfigError(f"ssim_scan: expected one of {list(SSIM_SCANS)}, got {self.ssim_scan!r}")


@dataclass(frozen=True)
class QuickstartPrivacy:
    """[privacy] of the quickstart: the SSIM-max protocol (paper 000 §4.1.6)."""

    q: int = PAPER_Q
    repeats: int = PAPER_REPEATS

    def __post_init__(self) -> None:
        check_minimum(self, "q", "repeats")


# --- fidelity and speed ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KIDSection:
    """[fidelity.kid]: subsets of the unbiased MMD estimate (torch-fidelity defaults, ``KID_DEFAULTS``)."""

    subsets: int = KID_DEFAULTS["subsets"]
    subset_size: int = KID_DEFAULTS["subset_size"]

    def __post_init__(self) -> None:
        check_minimum(self, "subsets", "subset_size")


@dataclass(frozen=True)
class FidelitySection:
    """[fidelity] of the assessment.

    extractors: registered feature extractors (offline EfficientNet-Lite0 by default).
    inception_v3_weights / vgg16_weights: weights files that add those extractors.
    domain: also use the penultimate layer of the Baseline Real classifier (and IS from its p(y|x)).
    k: PRDC neighbourhood size (Kynkaanniemi et al. 2019; ``medsyn.metrics.prdc.DEFAULT_K``).
    batch_size: images per feature-extraction batch.
    """

    extractors: tuple[str, ...] = (DEFAULT_EXTRACTOR,)
    inception_v3_weights: str | None = None
    vgg16_weights: str | None = None
    domain: bool = True
    k: int = PRDC_K
    kid: KIDSection = field(default_factory=KIDSection)
    batch_size: int = FEATURE_BATCH_SIZE

    def __post_init__(self) -> None:
        check_minimum(self, "k", "batch_size")


@dataclass(frozen=True)
class SpeedSection:
    """[speed]: sampling speed S = c / t (paper 000 §4.1.3): count samples per timed call, warmup untimed
    calls first, repeats timed calls."""

    count: int = 100
    warmup: int = 1
    repeats: int = 3

    def __post_init__(self) -> None:
        check_minimum(self, "count", "repeats")
        check_minimum(self, "warmup", minimum=0)


# --- generators inside other workflows -------------------------------------------------------------------------


@dataclass(frozen=True)
class SyntheticSetGenerator:
    """[synthetic_sets.<name>] of kind generator: a medsyn generator trained per seed (``config``: its
    model-config and training keys)."""

    kind: str
    model: str
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SyntheticSetCheckpoint:
    """[synthetic_sets.<name>] of kind checkpoint: a trained medsyn generator, sampled per seed."""

    kind: str
    path: str


@dataclass(frozen=True)
class SyntheticSetFolder:
    """[synthetic_sets.<name>] of kind folder: images made by any tool, with their labels CSV
    (``allow_outside_root``: accept CSV filenames that resolve outside ``path``; refused by default;
    ``store``: decode once into an on-disk image store under ``cache_dir`` and stream it, for large sets)."""

    kind: str
    path: str
    labels_csv: str
    allow_outside_root: bool = False
    store: bool = False
    cache_dir: str | None = None


SYNTHETIC_SET_SECTIONS: dict[str, type] = {
    "generator": SyntheticSetGenerator,
    "checkpoint": SyntheticSetCheckpoint,
    "folder": SyntheticSetFolder,
}


def parse_synthetic_sets(synthetic_sets: Any, path: str = "synthetic_sets") -> dict[str, dict[str, Any]]:
    """name -> spec, each checked by its kind's section (and a generator's config by its model's keys);
    returns plain dicts (the form ``results.json`` records)."""
    if not isinstance(synthetic_sets, Mapping) or not synthetic_sets:
        raise ConfigError(
            f"{path}: name at least one synthetic set, e.g. {{'cvae': {{'kind': 'generator', 'model': 'cvae'}}}}"
        )
    parsed = {}
    for name, spec in synthetic_sets.items():
        where = join_path(path, name)
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {type(spec).__name__}")
        kind = spec.get("kind")
        if kind not in SYNTHETIC_SET_SECTIONS:
            raise ConfigError(f"{where}.kind: expected one of {list(SYNTHETIC_SET_SECTIONS)}, got {kind!r}")
        section = parse_section(SYNTHETIC_SET_SECTIONS[kind], spec, path=where)
        entry = dataclasses.asdict(section)
        if kind == "generator":
            entry["config"] = parse_generator_overrides(section.model, section.config, path=f"{where}.config")
        parsed[str(name)] = entry
    return parsed


@dataclass(frozen=True)
class QuickstartModel:
    """[models.<name>] of the quickstart (name: a registered generator): ``config`` holds the generator's
    model-config and training keys."""

    config: Mapping[str, Any] = field(default_factory=dict)


def parse_quickstart_models(models: Any, path: str = "models") -> dict[str, dict[str, Any]]:
    """[models] of the quickstart: generator name -> {"config": checked overrides} (at least one)."""
    if not isinstance(models, Mapping) or not models:
        raise ConfigError(f"{path}: name at least one generator, e.g. {{'cvae': {{'config': {{'steps': 100}}}}}}")
    from medsyn.models.registry import GENERATORS

    parsed = {}
    for name, spec in models.items():
        where = join_path(path, name)
        if name not in GENERATORS:
            raise ConfigError(unknown_key_message(path, name, sorted(GENERATORS)))
        section = parse_section(QuickstartModel, spec, path=where)
        parsed[str(name)] = {"config": parse_generator_overrides(str(name), section.config, path=f"{where}.config")}
    return parsed
