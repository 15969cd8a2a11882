"""The evaluation layer: the protocol of papers 000 (§4.1) and 001 (§3) between the metrics and the
workflows. It owns the synthetic-set specs and each seed's sampling (``synthetic_sources``,
``synthetic_labels``), the utility regimes (``utility_regimes``), the fidelity and privacy suites
(``fidelity_suite``, ``privacy_suite``), the per-seed protocol and its aggregation (``protocol``), the seed
loop (``seed_loop``), the assessment from config sections to the results document (``assessment``) and the
DP sweep (``dp_sweep``). Inputs are the parsed config sections of ``medsyn.config.sections``; output is
one results document (schema: ``medsyn.report.results``).
"""
