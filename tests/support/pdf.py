"""Read a PDF the service made as a reader would: its text (pypdf's extraction) and whether it is tagged PDF/UA."""

from __future__ import annotations

import io

from pypdf import PdfReader


def pdf_text(pdf: bytes) -> str:
    """Return the text of every page, as extraction (copy, search, a screen reader) finds it."""
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages)


def pdf_is_tagged(pdf: bytes) -> bool:
    """Tell whether the PDF is tagged (MarkInfo, a structure tree), names its language and claims PDF/UA-1."""
    reader = PdfReader(io.BytesIO(pdf))
    root = reader.trailer["/Root"]
    metadata = root["/Metadata"].get_object().get_data() if "/Metadata" in root else b""
    return (
        bool(root.get("/MarkInfo", {}).get("/Marked"))
        and "/StructTreeRoot" in root
        and bool(root.get("/Lang"))
        and b"pdfuaid:part" in metadata
    )
