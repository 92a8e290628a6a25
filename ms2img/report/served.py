"""The model the registry serves, in one report cell: from promote@'s promotion.json, a rollback by hand since
(rollback.json), or the winner's card; the overview shows it beside this run's winner, which may differ."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ms2img.report.collect import AssayInputs
from ms2img.report.html import esc, num


def served_model(a: AssayInputs) -> str:
    """The model the registry serves in one cell: after a promotion (reports/<A>/promotion.json) its version; when
    the promotion kept the champion, that version and why, since this run's winner is then not served; else the
    winner's card: its threshold and the accessions it was trained on (low + high). A rollback by hand since that
    promotion (reports/<A>/rollback.json replacing the champion it left) names the version rolled back to."""
    promotion = a.promotion or {}
    version = promotion.get("champion_after")
    if rollback := a.rolled_back:
        return (
            f"<b>v{esc(rollback.get('champion'))} ({esc(rollback.get('family') or '?')})</b>, rolled back by hand "
            f"from v{esc(version)}: {esc(rollback.get('reason', ''))}"
        )
    if promotion.get("rejected") and not version:  # no champion at all (a cohort too small to beat chance)
        return f"<b>none</b>: {esc(promotion.get('reason', ''))}"
    if promotion.get("rejected") and version:
        family = promotion.get("champion_family") or "?"
        return f"<b>v{esc(version)} ({esc(family)})</b>, not this winner: {esc(promotion.get('reason', ''))}"
    card = a.cards.get(a.winner or "") if a.winner else None
    if not card:
        return "<span class='note'>no model card</span>"
    if version:
        return f"v{esc(version)}: " + card_text(card)
    return card_text(card)


def card_text(card: Mapping[str, Any]) -> str:
    """A model card's threshold and training accessions, or a regression model's value range."""
    if card.get("mode") == "regression":
        span = card.get("value_range") or {}
        return f"predicts the value; trained on {num(card.get('n_accessions'))} ({num(span.get('min'))} to " \
               f"{num(span.get('max'))}{' ' + esc(card['units']) if card.get('units') else ''})"  # fmt: skip
    counts = card.get("class_counts") or {}
    trained = card.get("n_accessions")
    text = f"threshold {num(card.get('threshold'))}"
    if trained is not None:
        text += f"; trained on {num(trained)}"
        if counts:
            text += f" ({num(counts.get('low'))} low + {num(counts.get('high'))} high)"
    return text
