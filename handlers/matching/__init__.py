"""The matching engine: which trade group a request is about, and which craftsmen fit it best.

Usage::

    index = MatchIndex(shipped_taxonomy(), profiles)
    index.classify("天车的控制柜接触器老烧")          # → Classification (group guesses)
    index.match(MatchRequest(text, region, "onsite"), top_k=3, status=statuses, exclude={...})

See ``docs/matching.md`` for the scoring and its measured quality and speed.
"""

from __future__ import annotations

from handlers.matching.index import MatchIndex
from handlers.matching.model import (
    MODES,
    Classification,
    CraftsmanProfile,
    CraftsmanStatus,
    GroupGuess,
    MatchRequest,
    MatchResult,
)
from handlers.matching.regions import Region, parse_region, region_affinity
from handlers.matching.taxonomy import Taxonomy, TaxonomyError, TradeGroup, shipped_taxonomy

__all__ = [
    "MODES",
    "Classification",
    "CraftsmanProfile",
    "CraftsmanStatus",
    "GroupGuess",
    "MatchIndex",
    "MatchRequest",
    "MatchResult",
    "Region",
    "Taxonomy",
    "TaxonomyError",
    "TradeGroup",
    "parse_region",
    "region_affinity",
    "shipped_taxonomy",
]
