"""Text analysis: normalisation, vocabulary scanning, jieba segmentation, colloquial expansion.

Two tokenisers work together. A trie over the taxonomy vocabulary finds every trade word in a text
exactly (jieba's statistics sometimes split a word we know, e.g. a rare part name), and a private
``jieba.Tokenizer`` whose dictionary includes that vocabulary cuts the rest, so words staff never
listed (a skill like "伺服调试") still match between a request and a craftsman's profile.

jieba's dictionary load costs about a second, so the tokenizer is built once per vocabulary and
process, and its frequency table (jieba's dictionary plus our words) is kept in a marshal cache file;
later processes load that in ~0.3 s.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import marshal
import os
import re
import tempfile
import threading
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jieba

_log = logging.getLogger(__name__)
jieba.setLogLevel(logging.WARNING)  # jieba logs "Building prefix dict..." at INFO on every load

# A request is recognised from its first MAX_QUERY_CHARS characters (the whole text is still stored
# and relayed). 2,000 characters is a long page of description (the labelled requests are at most 31)
# and bounds the analysis of one message to ~40 ms of CPU (docs/matching.md, "Long requests").
MAX_QUERY_CHARS = 2000
_END = ""  # trie key marking "a word ends here" (no real character is the empty string)
_ASCII_WORD = re.compile(r"^[0-9a-z][0-9a-z+.#-]*$")
_NOISE = re.compile(r"^[\W_\d]+$")
# Filler that enterprises type around a problem: greetings, urgency, question words. Dropped so they
# neither match a bio ("您好，我是...") nor dilute BM25.
STOPWORDS = frozenset(
    """
    你好 您好 师傅 老师 大师 专家 请问 请教 麻烦 帮忙 帮帮忙 帮个忙 谢谢 感谢 多谢 急 急急急 很急 着急 紧急 加急
    在线等 在吗 有人 有没有 能不能 可不可以 可以 怎么 怎么办 咋办 咋整 怎么回事 为什么 为啥 啥 什么 如何 是否
    问题 情况 现象 一下 一直 老是 总是 经常 有时候 有时 最近 今天 昨天 现在 马上 尽快 需要 想要 希望 找 找个
    我们 我 你们 你 他们 公司 厂里 厂子 单位 企业 这边 那边 这个 那个 一个 一些 很多 比较 非常 特别 太 有点
    出现 发现 觉得 感觉 好像 可能 还是 已经 还有 然后 就是 但是 而且 或者 以及 还 也 都 又 再 了 的 地 得 着
    过 吗 呢 吧 啊 呀 哦 哈 嘛 啦 个 把 被 让 给 和 跟 与 及 在 是 有 没 没有 不 会 能 要 想 去 来 上 下 里
    搞 弄 做 用 看看 看 一 下子 几 多 少 大 小 好 坏 新 老 说 问 请 求 求助 求救 帮 人 东西 事 事情 时候
    """.split()  # noqa: SIM905 (a word list reads better as text)
)


def normalize_text(text: str) -> str:
    """NFKC (full-width → half-width), lower case, collapsed whitespace."""
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def _cache_dir() -> Path:
    return Path(os.environ.get("CRAFTLINK_CACHE_DIR") or tempfile.gettempdir())


class VocabularyScanner:
    """Finds vocabulary words in a text with a character trie: O(len(text) × depth), not O(vocab)."""

    def __init__(self, words: Iterable[str]) -> None:
        self.trie: dict[str, Any] = {}  # nested dicts; the "" key holds the word ending here
        self.words: set[str] = set()
        for w in words:
            if not w:
                continue
            self.words.add(w)
            node = self.trie
            for ch in w:
                node = node.setdefault(ch, {})
            node[_END] = w

    def find_all(self, text: str) -> list[tuple[int, int, str]]:
        """Every (start, end, word) occurrence; ASCII words only on word boundaries ("ai" ≠ "email")."""
        out: list[tuple[int, int, str]] = []
        n = len(text)
        trie = self.trie
        for i in range(n):
            node = trie.get(text[i])
            j = i
            while node is not None:
                j += 1
                w = node.get(_END)
                if w is not None and not (
                    _ASCII_WORD.match(w)
                    and ((i > 0 and text[i - 1].isascii() and text[i - 1].isalnum())
                         or (j < n and text[j].isascii() and text[j].isalnum()))
                ):
                    out.append((i, j, w))
                if j >= n:
                    break
                node = node.get(text[j])
        return out


def reach(matches: list[tuple[int, int, str]], n: int) -> list[int]:
    """``reach[p]``: the furthest end of a match starting at or before ``p`` (``-1`` if none), p ≤ n.

    A match covers the span ``[a, b)`` exactly when ``reach[a] >= b``: one array answers "is this
    window explained by an exact word" in O(1), where a scan of every match made analysis quadratic.
    """
    out = [-1] * (n + 1)
    for s, e, _ in matches:
        if e > out[s]:
            out[s] = e
    for p in range(1, n + 1):
        if out[p - 1] > out[p]:
            out[p] = out[p - 1]
    return out


def split_maximal(
    matches: list[tuple[int, int, str]],
) -> tuple[list[str], list[str]]:
    """Split matches into maximal ones and those contained in a longer match ("焊接" in "焊接机器人").

    Linear: a match is contained when a match starting earlier ends at or after it, or one starting
    at the same place ends later (the trie yields each span once).
    """
    n = max((e for _, e, _ in matches), default=0)
    reach_at = reach(matches, n)
    longest_here = [-1] * (n + 1)  # the furthest end among matches starting exactly at p
    for s, e, _ in matches:
        if e > longest_here[s]:
            longest_here[s] = e
    maximal: list[str] = []
    contained: list[str] = []
    for s, e, w in matches:
        if (s > 0 and reach_at[s - 1] >= e) or longest_here[s] > e:
            contained.append(w)
        else:
            maximal.append(w)
    return maximal, contained


_jieba_lock = threading.Lock()
_jieba_cache: dict[str, jieba.Tokenizer] = {}


def jieba_tokenizer(vocabulary: Iterable[str]) -> jieba.Tokenizer:
    """A private jieba tokenizer that knows ``vocabulary``; cached per vocabulary (memory and disk)."""
    words = sorted(set(vocabulary))
    digest = hashlib.sha1(("\n".join([jieba.__version__, *words])).encode()).hexdigest()[:16]
    with _jieba_lock:
        tk = _jieba_cache.get(digest)
        if tk is not None:
            return tk
        tk = jieba.Tokenizer()
        cache = _cache_dir() / f"craftlink-jieba-{digest}.marshal"
        try:
            with cache.open("rb") as fh:
                tk.FREQ, tk.total = marshal.load(fh)
            tk.initialized = True  # skips jieba's own (slower) load
        except (OSError, ValueError, EOFError, TypeError):
            tk.initialize()
            for w in words:
                if len(w) >= 2 and " " not in w:
                    # A frequency high enough that jieba keeps our word whole, low enough that it does
                    # not glue it onto its neighbours.
                    tk.add_word(w, max(tk.FREQ.get(w, 0), 3000))
            tmp = cache.with_suffix(f".{os.getpid()}.tmp")
            try:
                with tmp.open("wb") as fh:
                    marshal.dump((tk.FREQ, tk.total), fh)
                os.replace(tmp, cache)
            except OSError as exc:  # a read-only temp dir only costs us speed
                _log.info("jieba cache not written: %s", exc)
                with contextlib.suppress(OSError):
                    tmp.unlink()
        _jieba_cache[digest] = tk
        return tk


@dataclass
class Analysis:
    """What a text means to the matcher.

    ``terms`` are the index terms with their weights; ``vocab`` the trade words found (colloquial words
    already replaced by their standard term) with weights for classification; ``expanded`` maps a
    standard term to the colloquial word that brought it in (for the reasons shown to staff).
    """

    terms: dict[str, float] = field(default_factory=dict)
    vocab: dict[str, float] = field(default_factory=dict)
    expanded: dict[str, str] = field(default_factory=dict)


class Analyzer:
    """Turns texts into terms, the same way for craftsmen's profiles and for requests."""

    def __init__(self, vocabulary: set[str], colloquial: dict[str, set[str]], *, use_jieba: bool = True):
        self.colloquial = colloquial
        self.scanner = VocabularyScanner(vocabulary)
        self.jieba = jieba_tokenizer(vocabulary) if use_jieba else None
        self._fuzzy = self._fuzzy_keys(w for w in vocabulary if len(w) >= 4 and not w.isascii())
        # One wrong character leaves either the first two or the next two characters of the word
        # intact: two set lookups rule out almost every window before its n blanked keys are built.
        self._fuzzy_pairs: dict[int, tuple[set[str], set[str]]] = {}
        for w in set(self._fuzzy.values()):
            heads, mids = self._fuzzy_pairs.setdefault(len(w), (set(), set()))
            heads.add(w[:2])
            mids.add(w[2:4])
        self._doc_cache: dict[str, dict[str, float]] = {}

    @staticmethod
    def _fuzzy_keys(words: Iterable[str]) -> dict[str, str]:
        """Keys with one character blanked: finds a 4+ character word typed with one wrong character
        (pinyin input gives homophones: 氩弧悍接 for 氩弧焊接). Ambiguous keys are dropped. Three-character
        words are left out on purpose: two matching characters out of three gave more false hits
        (接触网 → 接触器) than typos found."""
        keys: dict[str, str] = {}
        ambiguous: set[str] = set()
        for w in words:
            for p in range(len(w)):
                k = w[:p] + "\0" + w[p + 1 :]
                if k in keys and keys[k] != w:
                    ambiguous.add(k)
                keys[k] = w
        for k in ambiguous:
            del keys[k]
        return keys

    def _words(self, text: str) -> list[str]:
        """jieba words plus their known 2/3-character parts, filler dropped."""
        if self.jieba is None:
            return []
        out: list[str] = []
        freq = self.jieba.FREQ
        for w in self.jieba.cut(text, HMM=False):
            w = w.strip()
            if len(w) < 2 or w in STOPWORDS or _NOISE.match(w):
                continue
            out.append(w)
            if len(w) > 2:
                out.extend(w[i : i + 2] for i in range(len(w) - 1) if freq.get(w[i : i + 2]) and w[i : i + 2] not in STOPWORDS)
            if len(w) > 3:
                out.extend(w[i : i + 3] for i in range(len(w) - 2) if freq.get(w[i : i + 3]))
        return out

    def _vocab_hits(
        self, text: str, a: Analysis, *, sub_weight: float, matches: list[tuple[int, int, str]] | None = None
    ) -> None:
        if matches is None:
            matches = self.scanner.find_all(text)
        maximal, contained = split_maximal(matches)
        for words, weight in ((maximal, 1.0), (contained, sub_weight)):
            for w in words:
                targets = self.colloquial.get(w)
                if targets:
                    for t in targets:
                        a.vocab[t] = max(a.vocab.get(t, 0.0), weight)
                        a.terms[t] = max(a.terms.get(t, 0.0), weight)
                        a.expanded.setdefault(t, w)
                    # The colloquial word itself may be in a profile too ("天车维修").
                    a.terms[w] = max(a.terms.get(w, 0.0), 0.5 * weight)
                    if w in self.scanner.words and w not in self.colloquial:
                        a.vocab[w] = max(a.vocab.get(w, 0.0), weight)
                else:
                    a.vocab[w] = max(a.vocab.get(w, 0.0), weight)
                    a.terms[w] = max(a.terms.get(w, 0.0), weight)

    def analyze_query(self, text: str) -> Analysis:
        """Analyse a request: vocabulary (with expansion and one-typo tolerance) plus plain words.

        Only the first :data:`MAX_QUERY_CHARS` characters are analysed; every step is linear in them.
        """
        norm = normalize_text(text[:MAX_QUERY_CHARS])
        a = Analysis()
        exact = self.scanner.find_all(norm)
        self._vocab_hits(norm, a, sub_weight=0.4, matches=exact)
        covered = set(a.vocab) | set(a.expanded.values())
        # One-character typos of 4+ character words, only where nothing exact explains the window
        # ("焊缝老是" is 焊缝 + filler, not a typo of 焊缝黑): an exact match overlapping a window of n
        # characters by n - 1 or more covers its first n - 1 or its last n - 1 characters.
        reach_at = reach(exact, len(norm))
        fuzzy = self._fuzzy
        seen: set[str] = set()
        for n in range(4, 8):
            heads, mids = self._fuzzy_pairs.get(n, (set(), set()))
            for i in range(len(norm) - n + 1):
                if norm[i : i + 2] not in heads and norm[i + 2 : i + 4] not in mids:
                    continue
                if reach_at[i] >= i + n - 1 or reach_at[i + 1] >= i + n:
                    continue
                window = norm[i : i + n]
                for p in range(n):
                    w = fuzzy.get(window[:p] + "\0" + window[p + 1 :])
                    if w is not None and w not in covered and w not in seen and window != w:
                        seen.add(w)
                        for t in self.colloquial.get(w, {w}):
                            a.vocab[t] = max(a.vocab.get(t, 0.0), 0.6)
                            a.terms[t] = max(a.terms.get(t, 0.0), 0.6)
                            a.expanded.setdefault(t, window)
        for w in self._words(norm):
            if w not in a.terms:
                a.terms[w] = 1.0 if w not in covered else a.terms.get(w, 1.0)
        return a

    def doc_terms(self, text: str) -> dict[str, float]:
        """Term frequencies of a profile text; cached because rosters repeat skills a lot."""
        cached = self._doc_cache.get(text)
        if cached is not None:
            return cached
        norm = normalize_text(text)
        tf: dict[str, float] = {}
        matches = self.scanner.find_all(norm)
        for _, _, w in matches:  # every occurrence, contained ones too: a profile is recall-oriented
            tf[w] = tf.get(w, 0.0) + 1.0
            for t in self.colloquial.get(w, ()):
                tf[t] = tf.get(t, 0.0) + 1.0
        for w in self._words(norm):
            if w not in self.scanner.words:
                tf[w] = tf.get(w, 0.0) + 1.0
        if len(self._doc_cache) < 200_000:
            self._doc_cache[text] = tf
        return tf
