"""The trade taxonomy: one TOML file per trade group in ``handlers/matching/taxonomy/``.

The file format is described for staff in ``taxonomy/_schema.md``. Loading validates every file and
raises :class:`TaxonomyError` whose message is one line naming the file and the key at fault, so the
CLI and the service can show it without a traceback.
"""

from __future__ import annotations

import functools
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from handlers.matching.tokenize import Analyzer, normalize_text

SHIPPED_DIR = Path(__file__).with_name("taxonomy")


class TaxonomyError(Exception):
    """A taxonomy file is unreadable or invalid; ``str(err)`` is the one line to show."""


@dataclass(frozen=True)
class TradeGroup:
    """One trade group as staff wrote it (strings already normalised: NFKC, lower case)."""

    name: str  # canonical, as written (not lower-cased: it is shown to people)
    slug: str  # file stem
    aliases: tuple[str, ...]
    terms: tuple[str, ...]
    colloquial: tuple[tuple[str, str], ...]  # (what people say, standard term)


def _str_list(data: Mapping[str, Any], key: str, where: str, *, required: bool) -> tuple[str, ...]:
    value = data.get(key)
    if value is None:
        if required:
            raise TaxonomyError(f"{where}: missing key '{key}'")
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TaxonomyError(f"{where}: '{key}' must be a list of strings")
    out = tuple(dict.fromkeys(s.strip() for s in value if s.strip()))
    if required and not out:
        raise TaxonomyError(f"{where}: '{key}' must not be empty")
    return out


def parse_group(path: Path) -> TradeGroup:
    """Read and validate one group file."""
    where = path.name
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise TaxonomyError(f"{where}: cannot read file ({exc.__class__.__name__})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise TaxonomyError(f"{where}: invalid TOML ({exc})") from exc
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise TaxonomyError(f"{where}: 'name' must be a non-empty string")
    aliases = _str_list(data, "aliases", where, required=False)
    terms = _str_list(data, "terms", where, required=True)
    colloquial_raw = data.get("colloquial", {})
    if not isinstance(colloquial_raw, dict):
        raise TaxonomyError(f"{where}: 'colloquial' must be a table of \"what people say\" = \"term\"")
    colloquial: list[tuple[str, str]] = []
    for said, term in colloquial_raw.items():
        if not isinstance(term, str) or not term.strip() or not said.strip():
            raise TaxonomyError(f"{where}: colloquial.'{said}' must map to a non-empty string")
        colloquial.append((said.strip(), term.strip()))
    unknown = set(data) - {"name", "aliases", "terms", "colloquial"}
    if unknown:
        raise TaxonomyError(f"{where}: unknown key '{sorted(unknown)[0]}'")
    return TradeGroup(
        name=name.strip(), slug=path.stem, aliases=aliases, terms=terms, colloquial=tuple(colloquial)
    )


class Taxonomy:
    """All trade groups plus the derived lookup tables the matcher needs.

    ``term_groups`` maps every normalised word of the vocabulary (group names, aliases, terms, and the
    targets of colloquial words) to the groups that use it; ``colloquial`` maps a normalised colloquial
    word to the standard terms it stands for (several groups may define the same word).
    """

    def __init__(self, groups: Iterable[TradeGroup]) -> None:
        self.groups: tuple[TradeGroup, ...] = tuple(groups)
        seen: dict[str, str] = {}
        for g in self.groups:
            if g.name in seen:
                raise TaxonomyError(f"{g.slug}.toml: name '{g.name}' already used by {seen[g.name]}.toml")
            seen[g.name] = g.slug
        self.group_names: tuple[str, ...] = tuple(g.name for g in self.groups)
        self.by_name: dict[str, TradeGroup] = {g.name: g for g in self.groups}
        # Group names and aliases → canonical name (a roster may use an alias as the group).
        self.group_lookup: dict[str, str] = {}
        self.name_words: dict[str, set[str]] = {}  # normalised name/alias → groups
        self.term_groups: dict[str, set[str]] = {}
        self.colloquial: dict[str, set[str]] = {}
        self.display: dict[str, str] = {}  # normalised word → as staff wrote it ("plc" → "PLC")
        for g in self.groups:
            for word in (g.name, *g.aliases, *g.terms, *(w for pair in g.colloquial for w in pair)):
                self.display.setdefault(normalize_text(word), word)
            for word in (g.name, *g.aliases):
                w = normalize_text(word)
                self.group_lookup.setdefault(w, g.name)
                self.name_words.setdefault(w, set()).add(g.name)
            for term in g.terms:
                self.term_groups.setdefault(normalize_text(term), set()).add(g.name)
            for said, term in g.colloquial:
                t = normalize_text(term)
                self.colloquial.setdefault(normalize_text(said), set()).add(t)
                # The target counts for the group even when staff forgot to list it in terms.
                self.term_groups.setdefault(t, set()).add(g.name)

    def canonical_group(self, group: str) -> str | None:
        """The canonical group name for a name or alias, ``None`` for a group outside the taxonomy."""
        return self.group_lookup.get(normalize_text(group))

    def vocabulary(self) -> set[str]:
        """Every normalised word the tokenizer must know (terms, names, aliases, colloquial words)."""
        return set(self.term_groups) | set(self.name_words) | set(self.colloquial)

    @functools.cached_property
    def analyzer(self) -> Analyzer:
        """The analyzer for this vocabulary (builds the jieba tokenizer on first use)."""
        return Analyzer(self.vocabulary(), self.colloquial)

    @classmethod
    def load(cls, directory: Path | None = None) -> Taxonomy:
        """Load every ``*.toml`` in ``directory`` (default: the shipped dir), skipping ``_*`` files."""
        directory = SHIPPED_DIR if directory is None else directory
        if not directory.is_dir():
            raise TaxonomyError(f"{directory}: taxonomy directory not found")
        paths = sorted(p for p in directory.glob("*.toml") if not p.name.startswith("_"))
        return cls(parse_group(p) for p in paths)


@functools.lru_cache(maxsize=1)
def shipped_taxonomy() -> Taxonomy:
    """The shipped taxonomy, loaded once per process."""
    return Taxonomy.load()
