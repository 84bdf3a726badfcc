"""Find glyphs drawn as .notdef (the "tofu" box of a missing character) in a PDF.

Every text-showing operator (Tj, TJ, ', ") of every page and form XObject is decoded with the
font's encoding CMap: Identity-H maps a 2-byte code to the same CID, a custom CMap (WeasyPrint
writes one when a glyph is missing) lists `begincidchar`/`begincidrange` entries. A code that
maps to CID 0 draws .notdef: a character the font does not have.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pypdf import PdfReader
from pypdf.generic import ContentStream, DictionaryObject, NameObject

_CIDCHAR = re.compile(r"begincidchar(.*?)endcidchar", re.S)
_CIDRANGE = re.compile(r"begincidrange(.*?)endcidrange", re.S)


def _cid_map(font: DictionaryObject) -> Callable[[int], int] | None:
    """code → CID for a Type0 font; None for simple fonts (not used by WeasyPrint here)."""
    if font.get("/Subtype") != "/Type0":
        return None
    encoding = font.get("/Encoding")
    if isinstance(encoding, (NameObject, str)):
        if encoding in ("/Identity-H", "/Identity-V"):
            return lambda code: code
        raise AssertionError(f"unexpected predefined encoding {encoding}")
    text = encoding.get_object().get_data().decode("latin-1")
    table: dict[int, int] = {}
    for block in _CIDCHAR.findall(text):
        for code, cid in re.findall(r"<([0-9a-fA-F]+)>\s+(\d+)", block):
            table[int(code, 16)] = int(cid)
    ranges: list[tuple[int, int, int]] = []
    for block in _CIDRANGE.findall(text):
        for low, high, cid in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s+(\d+)", block):
            ranges.append((int(low, 16), int(high, 16), int(cid)))

    def lookup(code: int) -> int:
        if code in table:
            return table[code]
        for low, high, cid in ranges:
            if low <= code <= high:
                return cid + code - low
        return 0  # unmapped codes select CID 0 (.notdef)

    return lookup


def _strings(operands: list[Any], operator: bytes) -> Iterator[bytes]:
    if operator == b"TJ":
        items = operands[0]
    elif operator in (b"Tj", b"'", b'"'):
        items = [operands[-1]]
    else:
        return
    for item in items:
        if isinstance(item, bytes):
            yield bytes(item)
        elif isinstance(item, str):
            original = getattr(item, "original_bytes", None)
            yield bytes(original) if original is not None else item.encode("latin-1")


def notdef_glyphs(path: Path) -> list[tuple[int, str, int]]:
    """(page number, font name, code) of every glyph drawn as .notdef."""
    reader = PdfReader(str(path))
    found: list[tuple[int, str, int]] = []

    def walk(contents: Any, resources: DictionaryObject, page_number: int) -> None:
        fonts = resources.get("/Font")
        fonts = fonts.get_object() if fonts is not None else {}
        maps = {name: _cid_map(ref.get_object()) for name, ref in fonts.items()}
        names = {name: str(ref.get_object().get("/BaseFont")) for name, ref in fonts.items()}
        current: str | None = None
        for operands, operator in ContentStream(contents, reader).operations:
            if operator == b"Tf":
                current = str(operands[0])
                continue
            if operator == b"Do":
                xobjects = resources.get("/XObject")
                target = xobjects.get_object()[operands[0]].get_object() if xobjects else None
                if target is not None and target.get("/Subtype") == "/Form":
                    walk(target, target.get("/Resources", resources).get_object(), page_number)
                continue
            lookup = maps.get(current) if current else None
            if lookup is None:
                continue
            for data in _strings(operands, operator):
                for index in range(0, len(data) - 1, 2):
                    code = (data[index] << 8) | data[index + 1]
                    if lookup(code) == 0:
                        found.append((page_number, names.get(current, "?"), code))

    for number, page in enumerate(reader.pages, start=1):
        resources = page.get("/Resources")
        walk(
            page.get_contents(), resources.get_object() if resources else DictionaryObject(), number
        )
    return found
