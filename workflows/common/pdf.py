"""HTML to tagged PDF with WeasyPrint: the same HTML a page shows, printed as PDF/UA-1 in a font that has every letter.

The fonts are DejaVu Sans (regular, bold, oblique, bold oblique), shipped in `fonts/` beside this file so the PDF
looks the same on every machine and carries Finnish, Swedish and every Sámi letter (á č đ ŋ š ŧ ž, ǧ ǥ ǩ ǯ ʒ, â
and the rest), which the PDF core fonts (Latin-1) could not. The print stylesheet is given to WeasyPrint only: a
browser that opens the HTML keeps the page's own fonts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

FONTS = Path(__file__).resolve().parent / "fonts"
FAMILY = "Vuosikello Sans"
T = TypeVar("T")
_FACES = [
    ("DejaVuSans.ttf", "normal", "normal"),
    ("DejaVuSans-Bold.ttf", "bold", "normal"),
    ("DejaVuSans-Oblique.ttf", "normal", "italic"),
    ("DejaVuSans-BoldOblique.ttf", "bold", "italic"),
]


def print_css(extra: str = "") -> str:
    """Return the stylesheet WeasyPrint adds: the bundled fonts for every element, A4 pages, and `extra`."""
    faces = "\n".join(
        f'@font-face {{ font-family: "{FAMILY}"; src: url("{(FONTS / name).as_uri()}"); '
        f"font-weight: {weight}; font-style: {style}; }}"
        for name, weight, style in _FACES
    )
    # user stylesheets come before the document's own, so the font needs !important to win over the page's
    return (
        f"{faces}\n@page {{ size: A4; margin: 18mm 16mm 20mm; "
        f'@bottom-right {{ content: counter(page) " / " counter(pages); font-family: "{FAMILY}"; '
        f'font-size: 8pt; }} }}\n* {{ font-family: "{FAMILY}" !important; }}\n'
        f"body {{ max-width: none !important; margin: 0 !important; padding: 0 !important; font-size: 10pt; }}\n"
        f"{extra}"
    )


def html_to_pdf(html: str, *, extra_css: str = "") -> bytes:
    """Print an HTML document (with its `lang` and `<title>`) as a tagged PDF/UA-1 file."""
    # imported here: WeasyPrint loads Pango when imported, which only the PDF paths need
    from weasyprint import CSS, HTML
    from weasyprint.text.fonts import FontConfiguration

    config = FontConfiguration()  # one per document: Pango's font map is not shared between threads
    sheet = CSS(string=print_css(extra_css), font_config=config)
    pdf = HTML(string=html).write_pdf(stylesheets=[sheet], font_config=config, pdf_variant="pdf/ua-1")
    return bytes(pdf or b"")


def outside_event_loop(work: Callable[[], T]) -> T:
    """Run `work` here, or in a short-lived thread when this thread runs an event loop.

    pyHanko's synchronous signing and validation call asyncio.run(), which refuses to start inside a running loop
    (an async caller; Playwright's sync API in the tests)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(work).result()
