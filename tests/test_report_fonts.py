"""Non-Latin and right-to-left names print with real glyphs: one session summary (a DRAFT preview, so
no signing) whose patient is named in Cyrillic, Chinese, Arabic, Hebrew and Japanese.

How "no tofu" is checked, from the PDF alone: every glyph code drawn by a text operator (TJ/Tj) on
every page (body and margin boxes) is mapped through its font's encoding to a glyph id, which must
be neither 0 (.notdef) nor past the end of the embedded font program, and every glyph carrying a
character of the names must have an outline there. WeasyPrint draws a character no font has with
an id past the font's last glyph (mapped to .notdef by a custom encoding), so this catches it even
if WeasyPrint's own warning, also checked, were ever dropped.
"""
import io
import re
import subprocess

import pytest
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from pypdf.generic import ContentStream

from opsmgr.reports import service
from tests.test_reports import worked_record

LEGAL = "Мария Иванова 王秀英 مريم حداد"  # Cyrillic, Chinese, Arabic (no lam-alef: pdftotext reverses ligatures)
PREFERRED = "דוד כהן さくら 山田"  # Hebrew, Japanese


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
def test_non_latin_and_right_to_left_names_print_with_embedded_fonts_that_have_their_glyphs(app, tmp_path, caplog):
    rec = worked_record()
    rec.infusion_session.patient.legal_name, rec.infusion_session.patient.preferred_name = LEGAL, PREFERRED
    with app.test_request_context():
        content = service.session_summary_pdf(rec, draft=True)
    assert not [r for r in caplog.records if "notdef" in r.getMessage()], "WeasyPrint found a glyph no font has"
    path = tmp_path / "names.pdf"
    path.write_bytes(content)

    fonts = [line.split() for line in poppler("pdffonts", path).splitlines()[2:]]
    assert fonts and all(row[-5] == "yes" for row in fonts), fonts  # the "emb" column
    assert any("Droid-Sans-Fallback" in row[0] for row in fonts) and any("DejaVu-Sans" in row[0] for row in fonts)

    text = poppler("pdftotext", path)
    pages = text.count("\f")
    for word in LEGAL.split():
        assert text.count(word) >= pages + 1, word  # in the body and in every page's running header
    for word in PREFERRED.split():
        assert word in text, word

    drawn = drawn_glyphs(PdfReader(io.BytesIO(content)))
    assert drawn, "no text found"
    printed = set()
    for font_name, (program, glyphs) in drawn.items():
        glyph_order, glyf = program.getGlyphOrder(), program["glyf"]
        notdef = sorted(chars for gid, chars in glyphs if gid == 0 or gid >= len(glyph_order))
        assert not notdef, f"{font_name} draws .notdef for {notdef}"
        for gid, chars in glyphs:
            if set(chars) & set(LEGAL + PREFERRED) - {" "}:
                assert glyf[glyph_order[gid]].numberOfContours != 0, (font_name, chars)
            printed.update(chars)
    assert set(LEGAL + PREFERRED) <= printed


def poppler(tool, path):
    return subprocess.run([tool, str(path), "-"] if tool == "pdftotext" else [tool, str(path)], check=True,
                          capture_output=True, text=True).stdout


def drawn_glyphs(reader):
    """{font name: (embedded TrueType program, {(glyph id, text)} drawn)} over every page."""
    drawn = {}
    for page in reader.pages:
        fonts = page["/Resources"]["/Font"]
        current = None
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tf":
                current = font_entry(drawn, fonts[operands[0]].get_object())
            elif operator in (b"TJ", b"Tj"):
                strings = operands[0] if operator == b"TJ" else operands
                for string in strings:
                    if not isinstance(string, (int, float)):
                        raw = getattr(string, "original_bytes", None) or bytes(string)
                        codes = (int.from_bytes(raw[i:i + 2]) for i in range(0, len(raw), 2))
                        current[1].update((current[3](code), current[2].get(code, "")) for code in codes)
    return {name: (program, glyphs) for name, (program, glyphs, _, _) in drawn.items()}


def font_entry(drawn, font):
    """[program, {(glyph id, text)} drawn, {code: text}, code → glyph id] of a Type0 font WeasyPrint wrote (CIDs are
    glyph ids: /CIDToGIDMap /Identity)."""
    name = str(font["/BaseFont"])
    if name not in drawn:
        descendant = font["/DescendantFonts"][0].get_object()
        assert descendant["/CIDToGIDMap"] == "/Identity", name
        program = TTFont(io.BytesIO(descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data()))
        drawn[name] = [program, set(), cmap_pairs(font["/ToUnicode"], decode_hex), code_to_cid(font["/Encoding"])]
    return drawn[name]


def code_to_cid(encoding):
    if encoding == "/Identity-H":
        return lambda code: code
    cids = cmap_pairs(encoding, int)
    return lambda code: cids.get(code, 0)


def cmap_pairs(stream, value):
    """{code: value} from a CMap's bfchar/cidchar lines ("<code> <hex>" or "<code> decimal")."""
    data = stream.get_object().get_data().decode("latin-1")
    assert "bfrange" not in data and "cidrange" not in data, "a CMap range: WeasyPrint writes none so far"
    blocks = "".join(re.findall(r"begin(?:bf|cid)char(.*?)end(?:bf|cid)char", data, re.S))
    return {int(code, 16): value(target) for code, target in re.findall(r"<([0-9a-fA-F]+)>\s+(\S+)", blocks)}


def decode_hex(target):
    return bytes.fromhex(target.strip("<>")).decode("utf-16-be")
