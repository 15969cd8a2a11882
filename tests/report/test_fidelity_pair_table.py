"""Table A's pair rows: true-pair and unpaired-set PSNR / SSIM / LPIPS in columns that say which, a "-" where
a set lacks one (folder sets have no true pairs), the note saying what each measures, and the results
validator accepting the new key paths."""

from medsyn.report.assessment_tables import fidelity_tables
from medsyn.report.metric_catalog import describe_metric, metric_name_of
from medsyn.report.results import validate_results


def _section_after(lines, start):
    text = "\n".join(lines)
    return text[text.index(start):]


def test_pair_columns_name_their_protocol(assessment_results, statistic):
    sets = assessment_results["synthetic_sets"]
    sets["cvae"]["fidelity"]["true_pairs"]["lpips"] = statistic(0.12)
    sets["cvae"]["fidelity"]["unpaired_set"] = {"psnr": statistic(11.0), "ssim": statistic(0.6),
                                                "lpips": statistic(0.4)}
    sets["external"]["fidelity"]["unpaired_set"] = {"psnr": statistic(9.5), "ssim": statistic(0.5)}
    validate_results(assessment_results)
    pairs = _section_after(fidelity_tables(assessment_results), "PSNR / SSIM / LPIPS")
    assert "**True pairs**: each real test image and the generator's reconstruction of it" in pairs
    assert "**Unpaired set** (paper 001 Table 1)" in pairs and "not an error" in pairs
    header = ("| Synthetic set | PSNR true pairs (dB) ↑ | SSIM true pairs ↑ | LPIPS true pairs ↓ | "
              "PSNR unpaired set (dB) ↑ | SSIM unpaired set ↑ | LPIPS unpaired set ↓ |")
    assert header in pairs
    assert "| cvae | 21 [20.5, 21.5] | 0.7 [0.69, 0.71] | 0.12 [0.11, 0.13] | 11 [10.99, 11.01] |" in pairs
    assert "| external | - | - | - | 9.5 [9.49, 9.51] | 0.5 [0.49, 0.51] | - |" in pairs
    assert "| ddpm |" not in pairs  # no pair metric at all: no row


def test_pair_metrics_are_in_the_catalogue_with_their_direction():
    assert metric_name_of("fidelity.unpaired_set.psnr") == "fidelity.unpaired_set.psnr"
    assert metric_name_of("fidelity.true_pairs.lpips") == "fidelity.true_pairs.lpips"
    assert describe_metric("fidelity.unpaired_set.lpips").higher_is_better is False
    assert describe_metric("fidelity.unpaired_set.psnr").unit == "dB"
    assert "not a reconstruction error" in describe_metric("fidelity.unpaired_set.psnr").meaning
