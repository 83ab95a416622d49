#!/usr/bin/env python3
"""Writes the seed corpora under fuzz/corpus/ (committed; run this only to refresh them).

Seeds are small cuts of the real files in ../shared/data (the repository must not depend on
that directory at run time), the sheets crate's fixtures, and hand-written values. The
`sheets_xls_biff` seeds are the `Workbook` streams of the two real XLS files, extracted with
the `cfb` crate (see docs/security.md); pass their paths as XLWT_BIFF / NAF_BIFF to refresh them.

    python3 fuzz/make_seeds.py [path/to/shared/data]

The `sandbox_frames` seeds are not written here: they are the output of the reader child
itself, `printf 'nom\nA\n' | target/debug/foxflow-sheet-reader <options> | cat > seed`
(the options are `foxflow_sheet_sandbox::protocol::Request::to_args`).
"""

import io
import json
import os
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "fuzz" / "corpus"
DATA = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "data"
FIXTURES = ROOT / "crates" / "sheets" / "tests" / "fixtures"


def put(target: str, name: str, content: bytes) -> None:
    d = CORPUS / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(content)


def head(path: Path, lines: int) -> bytes:
    with open(path, "rb") as f:
        return b"".join(f.readline() for _ in range(lines))


def lines_matching(path: Path, needles: list[bytes], limit: int) -> bytes:
    """The header line and up to `limit` lines containing one of `needles` (the quirky ones)."""
    with open(path, "rb") as f:
        rows = f.read().split(b"\n")
    picked = [r for r in rows[1:] if any(n in r for n in needles)][:limit]
    return b"\n".join([rows[0], *picked]) + b"\n"


def parts_format(xlsx: bytes) -> bytes:
    """An XLSX as the `sheets_xlsx_parts` target reads it: a flags byte, then the parts."""
    out = bytearray(b"\x01")
    with zipfile.ZipFile(io.BytesIO(xlsx)) as z:
        for info in z.infolist():
            out += b"\0\0PART:" + info.filename.encode() + b"\n" + z.read(info)
    return bytes(out)


# The small valid workbook the sheets crate's tests start from (tests/sheets.rs).
BASE_PARTS = {
    "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/><Override PartName="/xl/sharedStrings.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/></Types>',
    "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
    "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Feuil1" sheetId="1" r:id="rId1"/></sheets></workbook>',
    "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/><Relationship Id="rId2" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/sharedStrings" Target="sharedStrings.xml"/></Relationships>',
    "xl/sharedStrings.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="3" uniqueCount="3"><si><t>siret</t></si><si><t>nom</t></si><si><t>Caf\u00e9 &amp; Co</t></si></sst>',
    "xl/worksheets/sheet1.xml": '<?xml version="1.0" encoding="UTF-8"?>\n<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><dimension ref="A1:B2"/><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row><row r="2"><c r="A2"><v>73282932000074</v></c><c r="B2" t="s"><v>2</v></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>=HYPERLINK("x")</t></is></c><c r="B3"><f>1+1</f><v>2</v></c></row></sheetData></worksheet>',
}


def base_xlsx() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in BASE_PARTS.items():
            z.writestr(name, text.encode())
    return buf.getvalue()


def main() -> None:
    villes = DATA / "real" / "villes_france.csv"
    wordpress = DATA / "real" / "wordpress_categories_export.csv"
    naf_csv = DATA / "naf" / "naf_rev2_sous_classes.csv"
    naf_xls = DATA / "naf" / "int_courts_naf_rev_2.xls"
    entreprises = ROOT / "docs" / "samples" / "entreprises.csv"

    csv_seeds = {
        "villes_head.csv": head(villes, 60),
        "wordpress_head.csv": head(wordpress, 30),
        "wordpress_quirks.csv": lines_matching(
            wordpress, [b"&amp;", "\u00a0".encode(), "\u202f".encode(), "\u200b".encode(), "\u2019".encode()], 25
        ),
        "naf_flat_head.csv": head(naf_csv, 25),
        "entreprises_head.csv": head(entreprises, 40),
        "utf8_bom_tab.csv": (FIXTURES / "utf8_bom_tab.csv").read_bytes(),
        "windows1252_semicolon.csv": (FIXTURES / "windows1252_semicolon.csv").read_bytes(),
        "formulas.csv": b"siren,nom\n=1+1,@SUM(A1)\n+cmd,-2\n732829320,\"quoted \"\"x\"\", y\"\n",
    }
    for name, content in csv_seeds.items():
        put("sheets_csv", name, content)
        put("domain_rows", name, content)

    put("sheets_xlsx", "entreprises_openpyxl.xlsx", (FIXTURES / "entreprises_openpyxl.xlsx").read_bytes())
    put("sheets_xlsx", "base.xlsx", base_xlsx())
    put("sheets_xlsx_parts", "entreprises_openpyxl.parts", parts_format((FIXTURES / "entreprises_openpyxl.xlsx").read_bytes()))
    put("sheets_xlsx_parts", "base.parts", parts_format(base_xlsx()))

    put("sheets_xls", "entreprises_xlwt.xls", (FIXTURES / "entreprises_xlwt.xls").read_bytes())
    put("sheets_xls", "int_courts_naf_rev_2.xls", naf_xls.read_bytes())
    for env, name in [("XLWT_BIFF", "entreprises_xlwt.biff"), ("NAF_BIFF", "int_courts_naf_rev_2.biff")]:
        if os.environ.get(env):
            put("sheets_xls_biff", name, Path(os.environ[env]).read_bytes())

    headers = [
        head(villes, 1), head(wordpress, 1), head(naf_csv, 1), head(entreprises, 1),
        "N\u00b0 SIREN;Raison sociale;Code-Postal;Libell\u00e9 NAF;E-mail;Site web;T\u00e9l\u00e9phone\n".encode(),
        b"siret\tnom\tnom\tsiren\tunknown\t\t\n",
    ]
    for i, h in enumerate(headers):
        put("header_matcher", f"header_{i}.txt", h)

    values = [
        "732829320", "732 829 320", "73282932000074", "7.3282932000074E13", "1,2345678901234E+13",
        "43.22A", "4322A", "01.11Z", "01500", "1500", "97411", "2A004", "+33 1 23 45 67 89",
        "01 23 45 67 89", "contact@example.fr", "Contact@Exemple.FR ", "https://www.exemple.fr/a?b=c",
        "exemple.fr", "plomberie-martin", "Caf\u00e9 &amp; Co\u00a0\u202f\u200b \u2019", "&eacute;t&#039;\u00e9",
        "  multi\r\nline\n\n\n\ttext  ", "VRAI", "faux", "1.0", "\u00c9\u0153\u00b2\ufb01",
        json.dumps({"type": "import_requested", "version": 1, "job_id": "0190b3c4-0000-7000-8000-000000000000"}),
    ]
    for i, v in enumerate(values):
        put("domain_values", f"value_{i}.txt", v.encode())

    put("domain_rows", "ai_text.txt", "Plombier \u00e0 Lyon depuis 1990, **Martin** r\u00e9pare vos fuites\u2026".encode())
    put("domain_rows", "faq.json", json.dumps([{"question": "Quels services ?", "reponse": "Plomberie et chauffage."}]).encode())
    put("domain_rows", "naf_insee_rows.tsv", "\tCode\tIntitul\u00e9\n1\tSECTION A\tAgriculture\n2\t01\tCultures\n3\t01.11Z\tCulture de c\u00e9r\u00e9ales\n".encode())


if __name__ == "__main__":
    main()
