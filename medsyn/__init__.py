"""medsyn: class-conditional generative models for scarce medical images, and an honest assessment of them.

Fidelity, diversity, sampling speed, utility, robustness and privacy (the extended generative-learning
trilemma), with compiled kernels for the heavy scans. See README.md and shared/DESIGN.md.
"""

from medsyn._version import __version__

__all__ = ["__version__"]
