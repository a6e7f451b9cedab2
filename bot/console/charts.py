"""Server-rendered SVG bar charts: no JavaScript, no library, sharp on a phone; labels escaped."""

from __future__ import annotations

from markupsafe import Markup, escape

COLORS = ("#2f6fd6", "#f0a020", "#3aa675", "#d64545")


def hbar(rows: list[tuple[str, list[float]]], series: list[str], *, title: str, unit: str = "") -> Markup:
    """Horizontal grouped bars: one row per label, one bar per series (e.g. 需求 / 解决)."""
    if not rows:
        return Markup('<p class="muted">本月暂无数据。</p>')
    label_w, bar_h, gap, width = 120, 14, 10, 560
    row_h = bar_h * len(series) + gap
    top = 44
    height = top + row_h * len(rows) + 10
    peak = max((v for _, values in rows for v in values), default=0) or 1
    scale = (width - label_w - 60) / peak
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg">',
           f'<text x="0" y="16" font-size="15" font-weight="600">{escape(title)}</text>']
    for i, name in enumerate(series):
        x = label_w + i * 90
        out.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{COLORS[i % len(COLORS)]}"/>'
                   f'<text x="{x + 14}" y="35" font-size="12">{escape(name)}</text>')
    for r, (label, values) in enumerate(rows):
        y = top + r * row_h
        out.append(f'<text x="{label_w - 6}" y="{y + row_h / 2}" font-size="12" text-anchor="end">'
                   f'{escape(label[:10])}</text>')
        for i, value in enumerate(values):
            by = y + i * bar_h
            w = max(value * scale, 0.5 if value else 0)
            out.append(f'<rect x="{label_w}" y="{by}" width="{w:.1f}" height="{bar_h - 2}" '
                       f'fill="{COLORS[i % len(COLORS)]}"/>'
                       f'<text x="{label_w + w + 4:.1f}" y="{by + bar_h - 4}" font-size="11">{value:g}{escape(unit)}</text>')
    out.append("</svg>")
    return Markup("".join(out))


def columns(months: list[tuple[str, list[float]]], series: list[str], *, title: str) -> Markup:
    """Vertical grouped columns over months (month over month)."""
    width, height, left, bottom, top = 560, 220, 30, 30, 44
    peak = max((v for _, values in months for v in values), default=0) or 1
    slot = (width - left) / max(len(months), 1)
    bar_w = min(22.0, (slot - 10) / max(len(series), 1))
    scale = (height - top - bottom) / peak
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{escape(title)}" '
           f'xmlns="http://www.w3.org/2000/svg">',
           f'<text x="0" y="16" font-size="15" font-weight="600">{escape(title)}</text>']
    for i, name in enumerate(series):
        x = left + i * 90
        out.append(f'<rect x="{x}" y="26" width="10" height="10" fill="{COLORS[i % len(COLORS)]}"/>'
                   f'<text x="{x + 14}" y="35" font-size="12">{escape(name)}</text>')
    base = height - bottom
    out.append(f'<line x1="{left}" y1="{base}" x2="{width}" y2="{base}" stroke="#999"/>')
    for m, (label, values) in enumerate(months):
        x0 = left + m * slot + (slot - bar_w * len(values)) / 2
        for i, value in enumerate(values):
            h = value * scale
            out.append(f'<rect x="{x0 + i * bar_w:.1f}" y="{base - h:.1f}" width="{bar_w - 2:.1f}" height="{h:.1f}" '
                       f'fill="{COLORS[i % len(COLORS)]}"/>')
            if value:
                out.append(f'<text x="{x0 + i * bar_w + bar_w / 2 - 1:.1f}" y="{base - h - 3:.1f}" font-size="10" '
                           f'text-anchor="middle">{value:g}</text>')
        out.append(f'<text x="{left + m * slot + slot / 2:.1f}" y="{base + 16}" font-size="11" '
                   f'text-anchor="middle">{escape(label)}</text>')
    out.append("</svg>")
    return Markup("".join(out))
