"""Rollback: point ``@champion`` back at an earlier version, smoke-tested first."""

from __future__ import annotations

from ms2img.errors import ConfigError
from ms2img.registry.decision import PromotionDecision, smoke_predict
from ms2img.registry.store import (
    CHAMPION,
    FAMILY_TAG,
    alias_version,
    model_versions,
    registry_lock,
    require_model,
    set_alias,
    version_tags,
)


def rollback(name: str, to_version: str, reason: str | None = None, smoke: bool = True) -> PromotionDecision:
    """Point ``champion`` back at ``to_version`` after a smoke prediction on it (refused with one line if it fails)."""
    require_model(name)
    known = {str(v.version) for v in model_versions(name)}
    if str(to_version) not in known:
        raise ConfigError(f"'{name}' has no version {to_version}; versions: {sorted(int(v) for v in known)}")
    failure = smoke_predict(name, str(to_version)) if smoke else None
    if failure:
        raise ConfigError(f"refusing rollback of '{name}' to version {to_version}: it {failure}")
    with registry_lock(name):
        before = alias_version(name, CHAMPION)
        why = reason or f"rollback from version {before}"
        set_alias(name, CHAMPION, str(to_version), why)
    family = version_tags(name, str(to_version)).get(FAMILY_TAG)
    return PromotionDecision(name, str(to_version), before, True, why, "rollback", family)
