"""The small-cohort note of `ms2img train` names the floor of the metric the run was scored by."""

from __future__ import annotations

from ms2img.commands.train import small_cohort_line


def test_regression_note_names_spearman_not_auc():
    """A regression run on FERMO (10 accessions) printed "at least as wide as Newcombe's score interval for an AUC"
    under Spearman scores: regression has no AUC; its floor is the Fisher-z interval for rho."""
    sel = {"protocol": "small cohort: 10 accessions with a value (below 40): 3-fold CV x 4 repeats"}
    reg = small_cohort_line("activity", sel, "spearman")
    assert "AUC" not in reg and "Spearman" in reg and reg.startswith("activity: small cohort: 10 accessions")
    assert "Newcombe's score interval for an AUC" in small_cohort_line("activity", sel, "auc")
