"""The BM25 inverted index over craftsmen, and the ranking that combines it with region and status.

Each craftsman is one document made of weighted fields (skills, group, bio, solved cases). Postings
map a term to {slot: saturated term weight}; a request only touches the postings of its own terms,
plus the member lists of the groups it is classified into (the group's taxonomy vocabulary counts
for its craftsmen even when their own skills list is short). Nothing per request is proportional to
the roster size, and :meth:`MatchIndex.upsert` re-indexes one craftsman in place.

The per-request arithmetic runs on numpy arrays of the candidates only (postings and member lists are
cached as arrays per term and group, dropped when an upsert touches them): with 100,000 craftsmen a
group has thousands of members with equal text relevance, and a Python loop over them was the cost.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from handlers.matching.model import (
    MODES,
    Classification,
    CraftsmanProfile,
    CraftsmanStatus,
    MatchRequest,
    MatchResult,
)
from handlers.matching.regions import Region, affinity, parse_region, region_label
from handlers.matching.scoring import (
    MIN_RELEVANCE,
    PERSONAL_CEILING_SHARE,
    REGION_BONUS,
    REGION_LABEL,
    W_GROUP,
    W_PERSONAL,
    classify_analysis,
    status_adjustment,
)
from handlers.matching.taxonomy import Taxonomy
from handlers.matching.tokenize import Analysis

K1 = 1.2
B = 0.75
# Field weights: skills are what staff vouch for; solved cases are proven; a bio is chattier.
FIELD_WEIGHTS = {"skills": 3.0, "group": 2.0, "solved": 1.5, "bio": 1.0}
_DEFAULT_STATUS = CraftsmanStatus()


@dataclass
class _Doc:
    profile: CraftsmanProfile
    group: str | None  # canonical taxonomy group, None when the roster's group is not in it
    region: Region
    tf: dict[str, float]
    length: float


class MatchIndex:
    """Craftsmen indexed for matching. Thread-safe for one writer and many readers (a lock per call)."""

    def __init__(self, taxonomy: Taxonomy, profiles: Iterable[CraftsmanProfile] = ()) -> None:
        self.taxonomy = taxonomy
        self.analyzer = taxonomy.analyzer
        self._lock = threading.RLock()
        self._docs: list[_Doc | None] = []
        self._slot: dict[str, int] = {}
        self._free: list[int] = []
        self._postings: dict[str, dict[int, float]] = {}
        self._members: dict[str, set[int]] = {}
        self._total_len = 0.0
        self._avgdl = 0.0  # the average length the stored weights were computed with
        # Parallel arrays by slot: interned region ids (-1 = unknown) for vectorised region bonuses.
        self._rid: dict[str, int] = {}
        self._prov = np.full(0, -1, dtype=np.int32)
        self._city = np.full(0, -1, dtype=np.int32)
        self._dist = np.full(0, -1, dtype=np.int32)
        self._term_arr: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._member_arr: dict[str, np.ndarray] = {}
        for p in profiles:
            self._add(p, reweigh=False)
        self._reweigh()

    def __len__(self) -> int:
        return len(self._slot)

    # -- indexing ----------------------------------------------------------------------------------

    def _doc_tf(self, p: CraftsmanProfile) -> dict[str, float]:
        tf: dict[str, float] = {}
        fields: list[tuple[str, str]] = [("skills", s) for s in p.skills]
        fields.append(("group", p.group))
        fields.append(("bio", p.bio))
        fields.extend(("solved", t) for t in p.solved_texts)
        for name, text in fields:
            if not text:
                continue
            w = FIELD_WEIGHTS[name]
            for term, n in self.analyzer.doc_terms(text).items():
                tf[term] = tf.get(term, 0.0) + w * n
        return tf

    def _weight(self, tf: float, length: float) -> float:
        return tf * (K1 + 1) / (tf + K1 * (1 - B + B * length / (self._avgdl or 1.0)))

    def _add(self, p: CraftsmanProfile, *, reweigh: bool) -> None:
        tf = self._doc_tf(p)
        doc = _Doc(p, self.taxonomy.canonical_group(p.group), parse_region(p.region), tf, sum(tf.values()))
        slot = self._free.pop() if self._free else len(self._docs)
        if slot == len(self._docs):
            self._docs.append(doc)
        else:
            self._docs[slot] = doc
        if slot >= len(self._prov):
            grow = max(1024, len(self._prov))
            self._prov, self._city, self._dist = (
                np.concatenate([a, np.full(grow, -1, dtype=np.int32)]) for a in (self._prov, self._city, self._dist)
            )
        self._prov[slot], self._city[slot], self._dist[slot] = (
            self._intern(doc.region.province), self._intern(doc.region.city), self._intern(doc.region.district)
        )
        self._slot[p.key] = slot
        self._total_len += doc.length
        if doc.group is not None:
            self._members.setdefault(doc.group, set()).add(slot)
            self._member_arr.pop(doc.group, None)
        if reweigh:
            for term, n in tf.items():
                self._postings.setdefault(term, {})[slot] = self._weight(n, doc.length)
                self._term_arr.pop(term, None)
            self._maybe_reweigh()

    def _intern(self, name: str) -> int:
        if not name:
            return -1
        return self._rid.setdefault(name, len(self._rid))

    def _drop(self, key: str) -> None:
        slot = self._slot.pop(key, None)
        if slot is None:
            return
        doc = self._docs[slot]
        assert doc is not None
        for term in doc.tf:
            plist = self._postings.get(term)
            if plist is not None:
                plist.pop(slot, None)
                if not plist:
                    del self._postings[term]
            self._term_arr.pop(term, None)
        if doc.group is not None:
            self._members[doc.group].discard(slot)
            self._member_arr.pop(doc.group, None)
        self._total_len -= doc.length
        self._docs[slot] = None
        self._free.append(slot)

    def _reweigh(self) -> None:
        """Recompute every stored weight for the current average length (O(postings))."""
        self._avgdl = self._total_len / len(self._slot) if self._slot else 0.0
        self._postings = {}
        self._term_arr = {}
        for slot, doc in enumerate(self._docs):
            if doc is None:
                continue
            for term, n in doc.tf.items():
                self._postings.setdefault(term, {})[slot] = self._weight(n, doc.length)

    def _maybe_reweigh(self) -> None:
        # BM25 barely moves with a small change of the average length, so the stored weights are
        # only recomputed when it drifted by a quarter: amortised O(1) per upsert, never per request.
        current = self._total_len / len(self._slot) if self._slot else 0.0
        if not self._avgdl or abs(current - self._avgdl) > 0.25 * self._avgdl:
            self._reweigh()

    def upsert(self, profile: CraftsmanProfile) -> None:
        """Add or re-index one craftsman without touching the others."""
        with self._lock:
            self._drop(profile.key)
            self._add(profile, reweigh=True)

    def remove(self, key: str) -> None:
        """Forget a craftsman (unknown keys are ignored)."""
        with self._lock:
            self._drop(key)
            self._maybe_reweigh()

    def profile(self, key: str) -> CraftsmanProfile | None:
        slot = self._slot.get(key)
        doc = self._docs[slot] if slot is not None else None
        return doc.profile if doc is not None else None

    # -- querying ----------------------------------------------------------------------------------

    def classify(self, text: str) -> Classification:
        """Which trade group ``text`` is about, from the taxonomy vocabulary."""
        return classify_analysis(self.taxonomy, self.analyzer.analyze_query(text))[0]

    def _term_postings(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        arr = self._term_arr.get(term)
        if arr is None:
            plist = self._postings.get(term)
            if not plist:
                return None
            arr = (np.fromiter(plist.keys(), np.int64, len(plist)), np.fromiter(plist.values(), np.float64, len(plist)))
            self._term_arr[term] = arr
        return arr

    def _group_members(self, group: str) -> np.ndarray:
        arr = self._member_arr.get(group)
        if arr is None:
            members = self._members.get(group, set())
            arr = np.fromiter(members, np.int64, len(members))
            self._member_arr[group] = arr
        return arr

    def match(
        self,
        req: MatchRequest,
        *,
        top_k: int = 5,
        status: Mapping[str, CraftsmanStatus] | None = None,
        exclude: Collection[str] = (),
    ) -> list[MatchResult]:
        """The best ``top_k`` craftsmen for a request, best first, each with its Chinese reasons.

        Hard filters first (not available, on leave, in ``exclude``), then the combined score (see
        :mod:`handlers.matching.scoring`). ``status`` maps profile keys to their dynamic status;
        missing keys count as a neutral, available newcomer.
        """
        if req.mode not in MODES:
            raise ValueError(f"unknown mode {req.mode!r}; expected one of {', '.join(MODES)}")
        a = self.analyzer.analyze_query(req.text)
        with self._lock:
            return self._match(a, req, top_k, status or {}, exclude)

    def _match(
        self,
        a: Analysis,
        req: MatchRequest,
        top_k: int,
        status: Mapping[str, CraftsmanStatus],
        exclude: Collection[str],
    ) -> list[MatchResult]:
        _, shares = classify_analysis(self.taxonomy, a)
        n_docs = len(self._slot)
        slots: list[np.ndarray] = []
        personal: list[np.ndarray] = []
        group: list[np.ndarray] = []
        ideal = 0.0  # the score of a profile holding every query term: BM25's ceiling for this request
        for term, qw in a.terms.items():
            arr = self._term_postings(term)
            if arr is None:
                if term in a.vocab:  # a trade word no profile holds still says what a full match is
                    ideal += qw * math.log(1.0 + (n_docs + 0.5) / 0.5) * (K1 + 1)
                continue
            df = len(arr[0])
            idf = qw * math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))
            ideal += idf * (K1 + 1)
            slots.append(arr[0])
            personal.append(arr[1] * idf)
            group.append(np.zeros(df))
        for g, share in shares.items():
            members = self._group_members(g)
            slots.append(members)
            personal.append(np.zeros(len(members)))
            group.append(np.full(len(members), W_GROUP * share))
        if not slots or not sum(len(x) for x in slots):
            return []
        cands, inv = np.unique(np.concatenate(slots), return_inverse=True)
        pers = np.bincount(inv, weights=np.concatenate(personal), minlength=len(cands))
        rel: np.ndarray = np.bincount(inv, weights=np.concatenate(group), minlength=len(cands)).astype(np.float64)
        best_personal = float(pers.max())
        if best_personal > 0:
            # Relative to the best profile, but never to less than a share of the ceiling: one generic
            # word ("信号", "车间") matched by an unrelated profile must not count as a full match.
            rel = rel + pers * (W_PERSONAL / max(best_personal, PERSONAL_CEILING_SHARE * ideal))
        keep = rel >= MIN_RELEVANCE * float(rel.max())
        cands, rel = cands[keep], rel[keep]
        score: np.ndarray = rel.astype(np.float64)
        want = parse_region(req.region) if req.region else None
        if want is not None and want.province:
            bonus = REGION_BONUS[req.mode]
            p_id, c_id, d_id = (self._rid.get(x, -2) if x else -2 for x in (want.province, want.city, want.district))
            same_city = self._city[cands] == c_id
            score += np.where(
                same_city & (self._dist[cands] == d_id),
                bonus["district"],
                np.where(same_city, bonus["city"], np.where(self._prov[cands] == p_id, bonus["province"], 0.0)),
            )
        if status or exclude:
            self._apply_status(cands, score, status, exclude)
        return self._top(a, req, want, shares, cands, score, top_k, status)

    def _apply_status(
        self, cands: np.ndarray, score: np.ndarray, status: Mapping[str, CraftsmanStatus], exclude: Collection[str]
    ) -> None:
        """Hard filters (score -inf) and status adjustments, walking whichever side is smaller."""
        hits: list[tuple[int, CraftsmanStatus | None]] = []  # (slot, status) or (slot, None) = excluded
        if len(status) + len(exclude) <= len(cands):
            hits = [(s, st) for k, st in status.items() if (s := self._slot.get(k)) is not None]
            hits += [(s, None) for k in exclude if (s := self._slot.get(k)) is not None]
        else:
            docs = self._docs
            for s in cands.tolist():
                key = docs[s].profile.key
                if key in exclude:
                    hits.append((s, None))
                elif (st := status.get(key)) is not None:
                    hits.append((s, st))
        if not hits:
            return
        where = np.searchsorted(cands, np.fromiter((h[0] for h in hits), np.int64, len(hits)))
        for (slot, st), i in zip(hits, where.tolist(), strict=True):
            if i >= len(cands) or cands[i] != slot:
                continue  # not a candidate for this request
            if st is None or not st.available or st.on_leave:
                score[i] = -math.inf
            else:
                score[i] += status_adjustment(st)[0]

    def _top(
        self,
        a: Analysis,
        req: MatchRequest,
        want: Region | None,
        shares: Mapping[str, float],
        cands: np.ndarray,
        score: np.ndarray,
        top_k: int,
        status: Mapping[str, CraftsmanStatus],
    ) -> list[MatchResult]:
        alive = np.isfinite(score)
        cands, score = cands[alive], score[alive]
        if len(cands) > top_k:
            # Everything strictly above the k-th score, plus the ties at it (broken by key below): many
            # members of a group share one score, so argpartition alone would pick arbitrary ones.
            kth = np.partition(score, len(score) - top_k)[len(score) - top_k]
            pick = score >= kth
            cands, score = cands[pick], score[pick]
        docs = self._docs
        order = sorted(
            zip(score.tolist(), cands.tolist(), strict=True),
            key=lambda t: (-t[0], docs[t[1]].profile.key),
        )[:top_k]
        return [self._result(a, req, want, shares, slot, sc, status) for sc, slot in order]

    def _result(
        self,
        a: Analysis,
        req: MatchRequest,
        want: Region | None,
        shares: Mapping[str, float],
        slot: int,
        score: float,
        status: Mapping[str, CraftsmanStatus],
    ) -> MatchResult:
        doc = self._docs[slot]
        assert doc is not None
        p = doc.profile
        hits = [t for t in a.terms if t in doc.tf and len(t) >= 2]
        if doc.group in shares:
            hits += [t for t in a.vocab if t not in hits and doc.group in self.taxonomy.term_groups.get(t, ())]
        # Say each thing once: 维修电工 is already the 小组 reason, and 电工 inside 维修电工 adds nothing.
        group = doc.group or ""
        if group in hits:  # the group's own name (and its pieces) is the 小组 reason, not a 命中
            hits = [t for t in hits if t not in group or t in a.expanded]
        hits = [t for t in hits if not any(t != o and t in o for o in hits)]
        disp = self.taxonomy.display
        shown = [
            f"{disp.get(t, t)}（{a.expanded[t]}）" if t in a.expanded else disp.get(t, t) for t in hits[:6]
        ]
        reasons: list[str] = []
        if shown:
            reasons.append("命中：" + "、".join(shown))
        if doc.group is not None and doc.group in shares:
            reasons.append(f"小组：{doc.group}")
        if want is not None and want.province:
            level = affinity(want, doc.region)
            if level is not None and (req.mode != "online" or level == "district"):
                reasons.append(f"{REGION_LABEL[level]}：{region_label(doc.region, level)}")
        st = status.get(p.key)
        if st is not None:
            reasons.extend(status_adjustment(st)[1])
        return MatchResult(p.key, p.code, p.name, p.group, round(score, 4), tuple(reasons))
