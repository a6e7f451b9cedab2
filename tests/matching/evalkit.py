"""Evaluation of the matcher on the labelled requests, and the plain BM25 baseline it is compared to.

Used by ``tests/matching/test_eval.py`` (a floor on the hit rate) and ``benchmarks/eval_match.py``
(the table in ``docs/matching.md``).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import jieba

from bot.channels.registry import roster_channels
from handlers.matching import CraftsmanProfile, MatchIndex, MatchRequest, Taxonomy
from handlers.matching.tokenize import STOPWORDS, normalize_text
from handlers.roster import parse_roster, to_profile

DATA = Path(__file__).parent / "data"
_NOISE = re.compile(r"^[\W_\d]+$")


@dataclass(frozen=True)
class EvalCase:
    id: str
    text: str
    region: str
    mode: str
    groups: tuple[str, ...]


def load_cases(path: Path = DATA / "eval_requests.jsonl") -> list[EvalCase]:
    cases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            o = json.loads(line)
            cases.append(EvalCase(o["id"], o["text"], o.get("region", ""), o.get("mode", "online"), tuple(o["groups"])))
    return cases


def load_profiles(path: Path = DATA / "roster.csv") -> list[CraftsmanProfile]:
    return [to_profile(r) for r in parse_roster(path, channels=roster_channels()).rows]


class PlainBM25:
    """The baseline: jieba's default dictionary, no taxonomy, no synonyms, the same fields."""

    def __init__(self, profiles: Sequence[CraftsmanProfile]) -> None:
        self.tk = jieba.Tokenizer()
        self.profiles = list(profiles)
        self.docs: list[dict[str, int]] = []
        for p in self.profiles:
            tf: dict[str, int] = {}
            for t in self._tokens(" ".join([*p.skills, p.group, p.bio, *p.solved_texts])):
                tf[t] = tf.get(t, 0) + 1
            self.docs.append(tf)
        self.avgdl = sum(sum(d.values()) for d in self.docs) / max(len(self.docs), 1)
        self.df: dict[str, int] = {}
        for d in self.docs:
            for t in d:
                self.df[t] = self.df.get(t, 0) + 1

    def _tokens(self, text: str) -> list[str]:
        return [
            w for w in self.tk.lcut(normalize_text(text))
            if len(w.strip()) >= 2 and w not in STOPWORDS and not _NOISE.match(w)
        ]  # fmt: skip

    def top(self, text: str, k: int) -> list[CraftsmanProfile]:
        n = len(self.docs)
        q = set(self._tokens(text))
        scores = []
        for i, d in enumerate(self.docs):
            dl = sum(d.values())
            s = 0.0
            for t in q:
                tf = d.get(t)
                if tf:
                    idf = math.log(1 + (n - self.df[t] + 0.5) / (self.df[t] + 0.5))
                    s += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / self.avgdl))
            if s > 0:
                scores.append((s, i))
        scores.sort(key=lambda x: (-x[0], x[1]))
        return [self.profiles[i] for _, i in scores[:k]]


@dataclass(frozen=True)
class Score:
    top1: float
    top3: float
    misses: tuple[str, ...]  # ids missed at top 3


def evaluate(rank: Callable[[EvalCase], list[str]], cases: Sequence[EvalCase]) -> Score:
    """``rank`` gives the groups of the ranked craftsmen for a case (best first)."""
    hit1 = hit3 = 0
    misses = []
    for c in cases:
        groups = rank(c)
        hit1 += bool(groups) and groups[0] in c.groups
        if any(g in c.groups for g in groups[:3]):
            hit3 += 1
        else:
            misses.append(c.id)
    n = len(cases)
    return Score(hit1 / n, hit3 / n, tuple(misses))


def evaluate_matcher(index: MatchIndex, cases: Sequence[EvalCase]) -> Score:
    def rank(c: EvalCase) -> list[str]:
        canon = index.taxonomy.canonical_group
        return [canon(r.group) or r.group for r in index.match(MatchRequest(c.text, c.region, c.mode), top_k=3)]

    return evaluate(rank, cases)


def evaluate_classifier(index: MatchIndex, cases: Sequence[EvalCase]) -> Score:
    return evaluate(lambda c: [g.group for g in index.classify(c.text).guesses], cases)


def evaluate_baseline(profiles: Sequence[CraftsmanProfile], cases: Sequence[EvalCase]) -> Score:
    bm = PlainBM25(profiles)
    return evaluate(lambda c: [p.group for p in bm.top(c.text, 3)], cases)


def build_index(taxonomy: Taxonomy, profiles: Sequence[CraftsmanProfile]) -> MatchIndex:
    return MatchIndex(taxonomy, profiles)
