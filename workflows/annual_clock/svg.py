"""The wheel of the year as SVG (months round the circle, items by process) and a printable page with a text list."""

from __future__ import annotations

import math
from datetime import date, timedelta
from html import escape

from babel.dates import get_month_names

from engine.calendar import format_date
from workflows.annual_clock.items import PROCESSES, Item
from workflows.i18n import translate

SIZE = 900
C = SIZE / 2
MONTH_OUTER, MONTH_INNER = 430, 380
RINGS = {"agreement": 345, "nomination": 300, "cycle": 255, "review": 210, "meeting": 165}
# Okabe-Ito colours stay distinct for colour-blind readers; shapes differ too (circle, square, arc)
COLOURS = {"agreement": "#0072B2", "nomination": "#E69F00", "cycle": "#009E73", "review": "#CC79A7",
           "meeting": "#56B4E9"}
OVERDUE = "#C00000"
LOCALES = {"fi": "fi", "sv": "sv_FI", "en": "en"}


def _t(key: str, lang: str) -> str:
    """Return a clock message, escaped for SVG and HTML."""
    return escape(translate(lang, f"clock.{key}"))


def angle_of(d: date) -> float:
    """Return the wheel angle of a date in degrees, clockwise from the top (0 = 1 January 00:00)."""
    start = date(d.year, 1, 1)
    days = (date(d.year + 1, 1, 1) - start).days
    return 360.0 * ((d - start).days + 0.5) / days


def point(angle: float, radius: float) -> tuple[float, float]:
    """Return the SVG coordinates of an angle (clockwise from the top) at a radius from the centre."""
    rad = math.radians(angle - 90)
    return round(C + radius * math.cos(rad), 2), round(C + radius * math.sin(rad), 2)


def _arc(a0: float, a1: float, r: float) -> str:
    x0, y0 = point(a0, r)
    x1, y1 = point(a1, r)
    large = 1 if (a1 - a0) % 360 > 180 else 0
    return f"M {x0} {y0} A {r} {r} 0 {large} 1 {x1} {y1}"


def _months(year: int, lang: str) -> list[str]:
    names = get_month_names("wide", context="stand-alone", locale=LOCALES.get(lang, "fi"))
    out = []
    for m in range(1, 13):
        first = date(year, m, 1)
        nxt = date(year + (m == 12), m % 12 + 1, 1)
        a0, a1 = angle_of(first) - 0.5 * 360 / 365, angle_of(nxt - timedelta(days=1)) + 0.5 * 360 / 365
        (ox0, oy0), (ox1, oy1) = point(a0, MONTH_OUTER), point(a1, MONTH_OUTER)
        (ix0, iy0), (ix1, iy1) = point(a0, MONTH_INNER), point(a1, MONTH_INNER)
        lx, ly = point((a0 + a1) / 2, (MONTH_OUTER + MONTH_INNER) / 2)
        fill = "#f2f2f2" if m % 2 else "#e0e0e0"
        path = (f"M {ix0} {iy0} L {ox0} {oy0} A {MONTH_OUTER} {MONTH_OUTER} 0 0 1 {ox1} {oy1} "
                f"L {ix1} {iy1} A {MONTH_INNER} {MONTH_INNER} 0 0 0 {ix0} {iy0} Z")
        out.append(f'<g class="month" data-month="{m}"><path d="{path}" fill="{fill}" stroke="#ffffff"/>'
                   f'<text x="{lx}" y="{ly}" text-anchor="middle" dominant-baseline="middle" font-size="16">'
                   f'{escape(names[m].capitalize())}</text></g>')
    return out


def _item(item: Item, year: int, lang: str) -> str:
    colour = COLOURS[item.process]
    start = max(item.start, date(year, 1, 1))
    end = min(item.end, date(year, 12, 31))
    a0 = angle_of(start)
    r = RINGS[item.process]
    title = item.title_in(lang)
    label = f"{format_date(item.start, lang)}: {title}"
    if item.kind == "window" and end > start:
        label = f"{format_date(item.start, lang)} – {format_date(item.end, lang)}: {title}"
    if item.overdue:
        label += f" ({translate(lang, 'clock.overdue')})"
    elif item.done:
        label += f" ({translate(lang, 'clock.done')})"
    stroke = f'stroke="{OVERDUE}" stroke-width="3"' if item.overdue else 'stroke="#1a1a1a" stroke-width="1"'
    x, y = point(a0, r)
    attrs = (f'class="item {item.kind}{" overdue" if item.overdue else ""}" data-uid="{escape(item.uid)}" '
             f'data-date="{item.start.isoformat()}" data-month="{start.month}" data-process="{item.process}" '
             f'data-x="{x}" data-y="{y}"')
    body = f"<title>{escape(label)}</title>"
    opacity = ' fill-opacity="0.45"' if item.done else ""
    if item.kind == "window" and end > start:
        faded = ' stroke-opacity="0.45"' if item.done else ""
        body += (f'<path d="{_arc(a0, angle_of(end), r)}" fill="none" stroke="{colour}" stroke-width="10" '
                 f'stroke-linecap="round"{faded}/>')
        body += f'<circle cx="{x}" cy="{y}" r="6" fill="{colour}" {stroke}/>'
    elif item.kind == "meeting":
        body += f'<rect x="{x - 7}" y="{y - 7}" width="14" height="14" fill="{colour}"{opacity} {stroke}/>'
    else:
        body += f'<circle cx="{x}" cy="{y}" r="7" fill="{colour}"{opacity} {stroke}/>'
    if item.overdue:
        body += (f'<text x="{x + 9}" y="{y - 9}" font-size="14" font-weight="bold" fill="{OVERDUE}" '
                 'aria-hidden="true">!</text>')
    return f"<g {attrs}>{body}</g>"


def _heading(lang: str, year: int, heading: str | None) -> str:
    return translate(lang, "clock.heading", year=year, name=heading or translate(lang, "clock.network"))


def render_svg(items: list[Item], year: int, lang: str, heading: str | None, today: date | None = None) -> str:
    """Render the wheel of a year (heading None: the whole network); each item is a <g> with a <title>."""
    title = _heading(lang, year, heading)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE + 120}" width="{SIZE}" '
             f'height="{SIZE + 120}" role="img" aria-labelledby="wheel-title wheel-desc" lang="{lang}" '
             'font-family="Arial, Helvetica, sans-serif">',
             f'<title id="wheel-title">{escape(title)}</title>',
             f'<desc id="wheel-desc">{_t("description", lang)} ({len(items)})</desc>',
             f'<rect width="{SIZE}" height="{SIZE + 120}" fill="#ffffff"/>']
    parts += _months(year, lang)
    for r in RINGS.values():
        parts.append(f'<circle cx="{C}" cy="{C}" r="{r}" fill="none" stroke="#cccccc" stroke-dasharray="2 4"/>')
    if today is not None and today.year == year:
        x, y = point(angle_of(today), MONTH_OUTER)
        parts.append(f'<line class="today" x1="{C}" y1="{C}" x2="{x}" y2="{y}" stroke="#1a1a1a" stroke-width="2"/>')
    parts.append(f'<text x="{C}" y="{C}" text-anchor="middle" dominant-baseline="middle" font-size="40" '
                 f'font-weight="bold">{year}</text>')
    parts += [_item(i, year, lang) for i in items]
    for n, process in enumerate(PROCESSES):
        lx, ly = 20 + (n % 3) * 300, SIZE + 30 + (n // 3) * 40
        parts.append(f'<g class="legend"><circle cx="{lx + 8}" cy="{ly}" r="8" fill="{COLOURS[process]}"/>'
                     f'<text x="{lx + 24}" y="{ly + 5}" font-size="16">{_t(f"process.{process}", lang)}</text></g>')
    parts.append("</svg>")
    return "\n".join(parts)


def render_page(items: list[Item], year: int, lang: str, heading: str | None, today: date | None = None) -> str:
    """Render a printable HTML page: the wheel and, beside it, the same items as a dated list."""
    rows = []
    for i in items:
        when = format_date(i.start, lang) + (f" – {format_date(i.end, lang)}" if i.end > i.start else "")
        state = f" <strong>({_t('overdue', lang)})</strong>" if i.overdue else (
            f" ({_t('done', lang)})" if i.done else "")
        rows.append(f"<li><time datetime=\"{i.start.isoformat()}\">{escape(when)}</time> – "
                    f"{_t(f'process.{i.process}', lang)}: {escape(i.title_in(lang))}{state}</li>")
    title = escape(_heading(lang, year, heading))
    return (f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title>'
            '<style>body{font-family:Arial,Helvetica,sans-serif;margin:1rem}'
            '.wrap{display:flex;flex-wrap:wrap;gap:2rem}.wrap svg{max-width:100%;height:auto}'
            '@media print{.wrap{display:block}.wrap svg{width:17cm;height:auto}li{break-inside:avoid}}</style>'
            f'</head><body><h1>{title}</h1><div class="wrap">'
            f'{render_svg(items, year, lang, heading, today)}<ol>{"".join(rows)}</ol></div></body></html>')
