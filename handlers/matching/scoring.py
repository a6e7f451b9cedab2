"""Scoring rules: which trade group a text is about, and how region and status move a candidate.

All weights live here so they can be tuned in one place against ``tests/matching/data`` (see
``docs/matching.md``). A candidate's final score is

    relevance (0..1: personal BM25 share + group share) + region bonus + status adjustment

so text relevance dominates, region decides between comparable craftsmen for on-site work, and the
status terms spread the work (load, recent offers) and favour reliable people (response, rating).
"""

from __future__ import annotations

from handlers.matching.model import Classification, CraftsmanStatus, GroupGuess
from handlers.matching.taxonomy import Taxonomy
from handlers.matching.tokenize import Analysis

# Relevance = W_PERSONAL * (BM25 / best BM25) + W_GROUP * (group evidence / best group evidence).
W_PERSONAL = 0.6
W_GROUP = 0.4
PERSONAL_CEILING_SHARE = 0.25  # BM25 is normalised by max(best, this share of the query's ceiling)
MIN_RELEVANCE = 0.12  # candidates below this (after normalising to the best) are noise
MAX_GROUPS = 3  # groups whose members all become candidates
GROUP_SHARE_FLOOR = 0.3  # ... if their evidence is at least this share of the best group's

# Classification: a group's name or alias is strong evidence; a term shared by n groups counts 1/n.
NAME_WEIGHT = 2.5
CONFIDENT_MIN = 1.0  # at least one unambiguous two-character trade word
CONFIDENT_RATIO = 0.7  # the second group must be below 70 % of the best

REGION_BONUS: dict[str, dict[str, float]] = {
    "onsite": {"district": 0.4, "city": 0.3, "province": 0.15},
    "training": {"district": 0.2, "city": 0.15, "province": 0.07},
    "online": {"district": 0.03, "city": 0.02, "province": 0.01},  # a tie-breaker only
}
REGION_LABEL = {"district": "同区", "city": "同城", "province": "同省"}


def _length_factor(word: str) -> float:
    # Longer words are more specific ("钨极氩弧焊" says more than "焊缝"); ASCII acronyms count as short.
    n = 2 if word.isascii() else len(word)
    return 1.0 + 0.25 * (min(n, 6) - 2)


def group_evidence(taxonomy: Taxonomy, analysis: Analysis) -> dict[str, tuple[float, list[str]]]:
    """Raw evidence per canonical group and the words that gave it."""
    out: dict[str, tuple[float, list[str]]] = {}
    for word, weight in analysis.vocab.items():
        contributions: dict[str, float] = {}
        names = taxonomy.name_words.get(word)
        if names:
            for g in names:
                contributions[g] = NAME_WEIGHT * weight / len(names)
        groups = taxonomy.term_groups.get(word)
        if groups:
            share = weight * _length_factor(word) / len(groups)
            for g in groups:
                contributions[g] = max(contributions.get(g, 0.0), share)
        for g, c in contributions.items():
            score, words = out.get(g, (0.0, []))
            words.append(word)
            out[g] = (score + c, words)
    return out


def classify_analysis(taxonomy: Taxonomy, analysis: Analysis) -> tuple[Classification, dict[str, float]]:
    """The classification and each guessed group's evidence relative to the best (1.0 for the best)."""
    evidence = group_evidence(taxonomy, analysis)
    if not evidence:
        return Classification((), False), {}
    ranked = sorted(evidence.items(), key=lambda kv: (-kv[1][0], taxonomy.group_names.index(kv[0])))
    best = ranked[0][1][0]
    total = sum(s for s, _ in evidence.values())
    kept = [(g, s, w) for g, (s, w) in ranked if s >= 0.25 * best][:5]
    guesses = tuple(
        GroupGuess(g, round(s / total, 3), tuple(taxonomy.display.get(x, x) for x in w)) for g, s, w in kept
    )
    second = kept[1][1] if len(kept) > 1 else 0.0
    confident = best >= CONFIDENT_MIN and second < CONFIDENT_RATIO * best
    shares = {g: s / best for g, s, _ in kept[:MAX_GROUPS] if s >= GROUP_SHARE_FLOOR * best}
    return Classification(guesses, confident), shares


def status_adjustment(st: CraftsmanStatus) -> tuple[float, list[str]]:
    """Load, fairness, response history and rating as a score change, with the reasons shown."""
    adj = 0.0
    reasons: list[str] = []
    if st.open_load > 0:
        adj -= 0.06 * min(st.open_load, 5)
        reasons.append(f"在办 {st.open_load} 件")
    if st.recent_offers > 0:
        # Fairness: each offer in the last 7 days costs a little, so the same star is not always first.
        adj -= 0.04 * min(st.recent_offers, 5)
        reasons.append(f"近7天已派单 {st.recent_offers} 次")
    if st.offers_total >= 3:  # fewer offers say nothing about a person yet
        rate = st.offers_answered / st.offers_total
        adj += 0.1 * (min(rate, 1.0) - 0.8)
        reasons.append(f"响应率 {rate:.0%}")
    if st.avg_rating is not None:
        adj += 0.04 * (st.avg_rating - 4.0)
        reasons.append(f"评分 {st.avg_rating:.1f}")
    return adj, reasons
