"""The monthly chart (matplotlib, Agg): cases and help hours per trade group, month over month.

Chinese labels need a CJK font, which a server may not have (``fc-list :lang=zh`` prints nothing).
:func:`cjk_font` looks for one among the fonts matplotlib can see; without one the chart still renders,
with English labels and trade groups by their taxonomy slug (``welding``, ``aquaculture``), instead of
rows of empty boxes. Installing e.g. Debian's ``fonts-wqy-microhei`` or ``fonts-noto-cjk`` switches to
Chinese labels with no configuration.
"""

from __future__ import annotations

import functools
import io
import shutil
import subprocess

import matplotlib

matplotlib.use("Agg")  # no display on a server; must precede pyplot

from matplotlib import font_manager  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from handlers.reports import parse_month  # noqa: E402
from handlers.reports.monthly import MonthlyReport, Row  # noqa: E402

_CJK_NAMES = ("WenQuanYi", "Noto Sans CJK", "Noto Serif CJK", "Source Han", "SimHei", "Microsoft YaHei",
              "PingFang", "Heiti", "Droid Sans Fallback", "AR PL", "Sarasa")
TOP_GROUPS = 8  # more bars than this are unreadable; the rest are summed as 其他


@functools.lru_cache(maxsize=1)
def cjk_font() -> str | None:
    """The family name of a font that has Chinese glyphs, or None."""
    for entry in font_manager.fontManager.ttflist:
        if any(name.lower() in entry.name.lower() for name in _CJK_NAMES):
            return str(entry.name)
    # matplotlib caches its font list: a font installed after that cache was built is only seen by fontconfig.
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return None
    try:
        out = subprocess.run([fc_list, ":lang=zh", "file"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for path in sorted(p.strip().rstrip(":") for p in out.splitlines() if p.strip()):
        if path.endswith((".ttf", ".ttc", ".otf")):
            try:
                font_manager.fontManager.addfont(path)
                return str(font_manager.FontProperties(fname=path).get_name())
            except (OSError, RuntimeError, ValueError):
                continue
    return None


def _romanise(group: str) -> str:
    """A label without Chinese characters for a group (its taxonomy slug), when no CJK font exists."""
    if group.isascii():
        return group
    if group == "其他":
        return "other"
    from handlers.matching.taxonomy import shipped_taxonomy

    taxonomy = shipped_taxonomy()
    name = taxonomy.canonical_group(group)
    return taxonomy.by_name[name].slug.replace("_", " ") if name else "group"


def monthly_chart(rep: MonthlyReport, *, font: str | None | bool = True) -> bytes:
    """PNG bytes. ``font=True`` finds a CJK font; ``None``/``False`` forces the romanised fallback."""
    family = cjk_font() if font is True else (font or None)
    zh = family is not None
    history = list(rep.history)
    while len(history) > 1 and not history[0][1]:  # months before the service started say nothing
        history.pop(0)
    totals: dict[str, float] = {}
    for _, groups in history:
        for g, row in groups.items():
            totals[g] = totals.get(g, 0) + row.cases + row.solved
    top = [g for g, _ in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0]))[:TOP_GROUPS]]
    has_other = len(totals) > len(top)
    labels = top + (["其他"] if has_other else [])
    months = [m for m, _ in history]

    def value(groups: dict[str, Row], g: str, attr: str) -> float:
        if g == "其他" and has_other:
            return float(sum(getattr(r, attr) for k, r in groups.items() if k not in top))
        row = groups.get(g)
        return float(getattr(row, attr)) if row is not None else 0.0

    fig = Figure(figsize=(10, 7.5), dpi=100)
    if family:
        fig.set_layout_engine("constrained")
    axes = fig.subplots(2, 1)
    width = 0.8 / max(1, len(months))
    for ax, attr, title in ((axes[0], "cases", ("新增需求（件）", "Requests")),
                            (axes[1], "help_hours", ("帮扶时长（小时）", "Help hours"))):
        for i, (month, groups) in enumerate(history):
            xs = [j + (i - (len(months) - 1) / 2) * width for j in range(len(labels))]
            _, m = parse_month(month)
            ax.bar(xs, [value(groups, g, attr) for g in labels], width=width,
                   label=f"{m}月" if zh else month)
        ax.set_xticks(range(len(labels)))
        ax.set_xticklabels(labels if zh else [_romanise(g) for g in labels], rotation=20, ha="right",
                           fontfamily=family)
        ax.set_title(title[0] if zh else title[1], fontfamily=family)
        ax.legend(fontsize=8, ncols=min(6, len(months)), prop={"family": family} if family else None)
        ax.grid(axis="y", alpha=0.3)
    y, mon = parse_month(rep.month)
    fig.suptitle(f"{y}年{mon}月 各专业需求与帮扶时长（近 {len(months)} 个月）" if zh
                 else f"{rep.month}: requests and help hours per trade group (last {len(months)} months)",
                 fontfamily=family)
    if not family:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
