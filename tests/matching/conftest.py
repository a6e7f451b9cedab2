"""Shared fixtures: indexes are built once per session (jieba and the shipped taxonomy are slow-ish)."""

from __future__ import annotations

from pathlib import Path

import pytest

from handlers.matching import CraftsmanProfile, MatchIndex, Taxonomy, shipped_taxonomy
from tests.matching.evalkit import load_profiles

DATA = Path(__file__).parent / "data"


def profile(key: str, group: str, skills: tuple[str, ...], region: str = "", bio: str = "") -> CraftsmanProfile:
    return CraftsmanProfile(key=key, code=f"C{key}", name=f"工匠{key}", group=group, skills=skills, region=region, bio=bio)


@pytest.fixture(scope="session")
def small_taxonomy() -> Taxonomy:
    return Taxonomy.load(DATA / "taxonomy")


@pytest.fixture(scope="session")
def shipped_index() -> MatchIndex:
    """The shipped taxonomy over the synthetic 120-craftsman roster (read-only: do not upsert)."""
    return MatchIndex(shipped_taxonomy(), load_profiles())
