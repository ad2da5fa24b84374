"""Charts as inline SVG drawn on the server: no script, no library, no external file.

Colours come with a text legend and a data table beside each chart, so no
figure is told by colour alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

from gateway.ui.i18n import Translator

__all__ = ["COLOURS", "stacked_bars"]

COLOURS = {"granted": "#1a7f37", "standard": "#57606a", "constrained": "#b35900"}
_W, _H, _TOP, _BOTTOM, _LEFT = 600, 170, 12, 24, 34


def stacked_bars(
    series: Mapping[str, Sequence[int]], labels: Sequence[str], title: str, t: Translator
) -> Markup:
    """One bar per slot, its outcomes stacked in ``COLOURS`` order."""
    slots = len(labels)
    totals = [sum(series.get(o, [0] * slots)[i] for o in COLOURS) for i in range(slots)]
    peak = max(max(totals, default=0), 1)
    plot_h = _H - _TOP - _BOTTOM
    step = (_W - _LEFT) / max(slots, 1)
    width = max(step - 2, 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
        f'<line x1="{_LEFT}" y1="{_H - _BOTTOM}" x2="{_W}" y2="{_H - _BOTTOM}"'
        ' stroke="#444" stroke-width="1"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 8}" text-anchor="end" font-size="11"'
        f' fill="#222">{peak}</text>',
        f'<text x="{_LEFT - 4}" y="{_H - _BOTTOM}" text-anchor="end" font-size="11"'
        ' fill="#222">0</text>',
    ]
    for i in range(slots):
        y = float(_H - _BOTTOM)
        x = _LEFT + i * step + 1
        for outcome, colour in COLOURS.items():
            count = series.get(outcome, [0] * slots)[i]
            if not count:
                continue
            h = plot_h * count / peak
            y -= h
            label = f"{labels[i]} {t('outcome.' + outcome)}: {count}"
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{h:.1f}"'
                f' fill="{colour}"><title>{escape(label)}</title></rect>'
            )
    # First, middle and last slot; the outer ones anchored inwards so they are never cut.
    ticks = ((0, "start", _LEFT), (slots // 2, "middle", None), (slots - 1, "end", _W))
    for i, anchor, fixed in ticks if slots else ():
        x = fixed if fixed is not None else _LEFT + i * step + step / 2
        parts.append(
            f'<text x="{x:.1f}" y="{_H - 6}" text-anchor="{anchor}" font-size="11"'
            f' fill="#222">{escape(labels[i])}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every text in it is escaped above
