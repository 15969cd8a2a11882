"""report.md / report.html of any schema-2 document: every section present is rendered, every missing one is
left out (never a crash), and the regime bars."""

import base64

import pytest

from medsyn.report.assessment_figures import save_regime_bars
from medsyn.report.assessment_tables import format_interval
from medsyn.report.html import markdown_to_html
from medsyn.report.markdown import render_report


def _section(markdown: str, heading: str) -> str:
    """The text under ``## heading`` up to the next ``## ``."""
    start = markdown.index(f"## {heading}")
    end = markdown.find("\n## ", start + 3)
    return markdown[start:] if end < 0 else markdown[start:end]


def test_format_interval():
    assert format_interval({"mean": 0.5, "ci90": [0.25, 0.75], "n_seeds": 3}) == "0.5 [0.25, 0.75]"
    assert format_interval(None) == "-"


def test_assessment_report_renders_every_section(assessment_results):
    markdown = render_report(assessment_results, figures={"Radar": "figures/radar.png"}, title="My assessment")
    assert markdown.startswith("# My assessment\n")
    assert "Real data: digits (embedded), images (C,H,W) [1, 8, 8]" in markdown and "Seeds: [0, 1, 2]" in markdown
    assert "- **utility**: top-1 accuracy on the real test split" in markdown

    table_a = _section(markdown, "Table A")
    assert "Extractor **effnet_lite0** (EfficientNet-Lite0 (offline))" in table_a
    assert "KID ↓ [effnet_lite0]" in table_a and "KID ↓ [inception_v3]" not in table_a  # a column no set has
    assert "| Synthetic set | Fidelity (precision) ↑ [inception_v3] | FID ↓ [inception_v3] |" in table_a
    assert "| ddpm | 0.4 [0.39, 0.41] | 80 [77, 83] |" in table_a
    assert "IS [domain_baseline_real] ↑" in table_a
    speed = table_a[table_a.index("Sampling speed"):table_a.index("PSNR")]
    assert "| cvae | 1000 [900, 1100] |" in speed and "| external |" not in speed  # folder sets have no speed
    assert "| cvae | 21 [20.5, 21.5] | 0.7 [0.69, 0.71] |" in table_a and "| ddpm | 21" not in table_a

    table_b = _section(markdown, "Table B")
    assert "DCR KS (pixel space) | DCR KS (effnet_lite0 space) | DCR area (pixel space)" in table_b
    assert "| external | 0.45 [0.44, 0.46] | 0.47 [0.46, 0.48] | 0.3 [0.29, 0.31] |" in table_b
    assert table_b.count("| external |") == 1 and "| - |" in table_b  # no empirical epsilon for the folder set
    assert ("| empirical ε worst query, ln(r_a/r_v) as paper code ↓ | empirical ε mean over queries, paper code ↓ "
            "| empirical ε worst query, with d (kNN log density ratio) ↓ | empirical ε mean over queries, with d ↓ |"
            ) in table_b
    assert "| 1.5 [1.3, 1.7] | 1 [0.8, 1.2] | 3 [2.6, 3.4] | 2 [1.6, 2.4] |" in table_b  # cvae: worst, mean, ...
    assert "DP ε" not in table_b  # no DP in an assessment

    table_c = _section(markdown, "Table C")
    assert "top-1 accuracy on the real test split. Robustness: DeepFool, 5 steps" in table_c
    header = "| Experiments | Models | Utility acc. 1x | Macro F1 1x | Robustness 1x | Utility acc. 2x |"
    assert header in table_c
    assert "| Baseline Real | - | 0.95 [0.94, 0.96] | 0.85 [0.84, 0.86] | 0.05 [0.04, 0.06] | 0.95 [" in table_c
    assert "| Synthetic DA | ddpm | 0.9 [0.89, 0.91] |" in table_c
    assert [line.split(" | ")[0] for line in table_c.splitlines() if line.startswith("| ") and "-|" not in line][1:] == (
        ["| Baseline Real", "| Geometric DA"] + ["| Data Anonymization"] * 3 + ["| Synthetic DA"] * 3
        + ["| Combined DA"] * 3)

    not_computed = _section(markdown, "Not computed")
    assert "- external: `empirical_epsilon` — not computed: folder sets have no generator" in not_computed
    assert "![Radar](figures/radar.png)" in _section(markdown, "Figures")
    meanings = _section(markdown, "What the metrics mean")
    assert "- **fidelity.fid** (fidelity+diversity; lower is better)" in meanings
    assert "- **sampling_speed** [samples/s] (sampling speed; higher is better)" in meanings
    assert "privacy.dp_epsilon" not in meanings  # only metrics the document holds
    assert "- a note for the reader" in _section(markdown, "Notes")
    assert "torch 2.13.0, medsyn 0.1.0" in _section(markdown, "Versions")


def test_quickstart_report_skips_what_a_quickstart_lacks(quickstart_results):
    markdown = render_report(quickstart_results, figures={}, title="medsyn quickstart report")
    table_a = _section(markdown, "Table A")
    assert "KID" not in table_a and "IS [" not in table_a and "PSNR" not in table_a
    assert "| cvae | 0.3 [0.3, 0.3] | 0.25 [0.25, 0.25] | 0.6 [0.6, 0.6] | 0.3 [0.3, 0.3] | 40 [40, 40] |" in table_a
    table_b = _section(markdown, "Table B")
    assert "DCR" not in table_b and "empirical" not in table_b
    assert "| cvae | 0.5 [0.5, 0.5] | 0.5 [0.5, 0.5] |" in table_b
    table_c = _section(markdown, "Table C")
    assert "| Experiments | Models | Utility acc. 1x | Macro F1 1x |\n" in table_c  # no robustness column
    assert "| Baseline Real | - | 0.95 [0.94, 0.96] | 0.85 [0.84, 0.86] |" in table_c
    assert "| Data Anonymization | ddpm | 0.8 [0.79, 0.81] | 0.7 [0.69, 0.71] |" in table_c
    assert "Geometric DA" not in table_c and "Synthetic DA" not in table_c
    assert "## Figures" not in markdown and "## Notes" not in markdown and "## Versions" not in markdown
    assert "- **privacy.ssim_max_paper** (privacy; lower is better)" in markdown
    assert "- cvae: `empirical_epsilon` — disabled in the privacy config" in markdown


def test_a_document_with_only_some_sections(quickstart_results):
    for entry in quickstart_results["synthetic_sets"].values():
        for section in ("fidelity", "privacy", "sampling_speed", "not_computed"):
            del entry[section]
    markdown = render_report(quickstart_results, figures={}, title="t")
    assert "Table A" not in markdown and "Table B" not in markdown and "Not computed" not in markdown
    assert "| Data Anonymization | cvae |" in markdown


def test_dp_sweep_document_renders_as_a_report_too(dp_sweep_results):
    markdown = render_report(dp_sweep_results, figures={}, title="sweep")
    table_b = _section(markdown, "Table B")
    assert "| sigma_0 | inf (no privacy) |" in table_b and "| sigma_0.5 | 8 [7.2, 8.8] |" in table_b
    assert "- **privacy.dp_epsilon** (privacy; lower is better)" in markdown


def test_render_report_validates_first(quickstart_results):
    quickstart_results["synthetic_sets"]["cvae"]["privacy"]["ssim_max_paper"]["mean"] = float("nan")
    with pytest.raises(ValueError, match=r"\['cvae'\]\['privacy'\]\['ssim_max_paper'\]\.mean"):
        render_report(quickstart_results, figures={}, title="t")


def test_regime_bars_and_html_embed_the_figures(tmp_path, assessment_results):
    save_regime_bars(tmp_path / "u.png", assessment_results, section="utility", metric="accuracy")
    save_regime_bars(tmp_path / "r.png", assessment_results, section="robustness", metric="adversarial_accuracy")
    markdown = render_report(assessment_results, figures={"Utility": "u.png", "Robustness": "r.png"}, title="t")
    page = markdown_to_html(markdown, base_dir=tmp_path, title="t")
    assert page.count("<table>") == 7  # 2 extractors, IS, speed, true pairs (Table A); Table B; Table C
    embedded = page.split('src="data:image/png;base64,')[1].split('"')[0]
    assert base64.b64decode(embedded) == (tmp_path / "u.png").read_bytes()
    with pytest.raises(FileNotFoundError, match="missing.png"):
        markdown_to_html("![x](missing.png)", base_dir=tmp_path, title="t")


def test_regime_bars_of_a_quickstart(tmp_path, quickstart_results):
    path = save_regime_bars(tmp_path / "u.png", quickstart_results, section="utility", metric="accuracy", title="q")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="no synthetic set has a 'robustness' section"):
        save_regime_bars(tmp_path / "r.png", quickstart_results, section="robustness", metric="adversarial_accuracy")


def test_html_escapes_text(tmp_path):
    page = markdown_to_html("# a <b>\n\nx < y & **z**", base_dir=tmp_path, title="t")
    assert "<h1>a &lt;b&gt;</h1>" in page and "x &lt; y &amp; <strong>z</strong>" in page


def test_top3_scores_are_validated_and_get_their_own_columns(assessment_results, statistic):
    from medsyn.report.results import validate_results

    entry = next(iter(assessment_results["synthetic_sets"].values()))
    for section, metric in (("utility", "top3_accuracy"), ("robustness", "top3_adversarial_accuracy")):
        for by_multiplier in entry[section].values():
            for scores in by_multiplier.values():
                scores[metric] = statistic(0.97)
    validate_results(assessment_results)
    table_c = _section(render_report(assessment_results, figures={}, title="t"), "Table C")
    assert "Utility top-3 acc. 1x" in table_c and "Robustness top-3 1x" in table_c
    assert "0.97 [" in table_c
    # a mistyped top-k name is not a metric of the schema
    next(iter(next(iter(entry["utility"].values())).values()))["top3_macro_f1"] = statistic(0.5)
    with pytest.raises(ValueError, match="top3_macro_f1"):
        validate_results(assessment_results)
