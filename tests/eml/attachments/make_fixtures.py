"""Writes the attachment fixtures of tests/core/test_attachments.py (run from the repository root).

    npm install --prefix /tmp/cfb cfb@1.2.2        # SheetJS cfb, for the Outlook .msg file
    CFB_NODE_MODULES=/tmp/cfb/node_modules python tests/eml/attachments/make_fixtures.py

PDFs are written by hand (a PDF is a short text format: objects, a cross-reference table) so each
one holds exactly the text and the structure a test needs; pypdf only encrypts the encrypted ones.
The .msg file is a real Compound File Binary container written by make_msg.js. Every fixture is a
complete .eml a buyer could send; the output is deterministic, so regenerating changes nothing.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tempfile
import zlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from unittest import mock

import pypdf

HERE = Path(__file__).resolve().parent
DATE = format_datetime(datetime(2026, 4, 14, 9, 30, tzinfo=UTC))


# -- PDF ------------------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def page_stream(lines: list[str]) -> bytes:
    """A content stream drawing `lines` top to bottom in Helvetica."""
    ops = ["BT", "/F1 11 Tf", "14 TL", "50 800 Td"]
    ops += [f"({_escape(line)}) Tj T*" for line in lines]
    ops.append("ET")
    return "\n".join(ops).encode("latin-1")


def pdf(pages: list[bytes], *, shared_content: bool = False) -> bytes:
    """A PDF with one page per content stream (deflated); with `shared_content` every page draws
    the first stream (a file of thousands of pages stays small)."""
    objects: list[bytes] = []  # object n is objects[n - 1]
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(b"")  # the page tree, written once the pages are numbered
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    streams = pages[:1] if shared_content else pages
    stream_ids = []
    for content in streams:
        packed = zlib.compress(content, 9)
        objects.append(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed) + packed + b"\nendstream"
        )
        stream_ids.append(len(objects))
    kids = []
    for index in range(len(pages)):
        content_id = stream_ids[0] if shared_content else stream_ids[index]
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % content_id
        )
        kids.append(len(objects))
    objects[1] = b"<< /Type /Pages /Kids [%s] /Count %d >>" % (
        b" ".join(b"%d 0 R" % k for k in kids),
        len(kids),
    )
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()


def encrypted(data: bytes, user_password: str) -> bytes:
    # pypdf draws the file id at random; a fixed one keeps the output the same at every run.
    with mock.patch("secrets.token_bytes", lambda n: b"\x5a" * n):
        writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
        # RC4 needs no cryptography library, so reading it never depends on one being installed.
        writer.encrypt(user_password=user_password, owner_password="supplier-owner", algorithm="RC4-128")
        out = io.BytesIO()
        writer.write(out)
    return out.getvalue()


PI_LINES = [
    "SHENZHEN BRIGHTLINE LIGHTING CO., LTD.",
    "Tel: +86 755 2345 6789  Fax: +86 755 2345 6790",
    "PROFORMA INVOICE",
    "PI No.: 2026041200017",
    "Date: 2026-04-12",
    "Buyer: Lopez Retail S.L.",
    "Trade Assurance Order No.: 2891 4471 8836 0052",
    "Item: LED strip 5 m, 2000 pcs, USD 3,400.00",
    "Bank account: 6222 0212 3456 7890 123",
]
DECOY_LINES = [
    "SHENZHEN BRIGHTLINE LIGHTING CO., LTD.",
    "Tel: +86 755 2345 6789",
    "PROFORMA INVOICE",
    "PI No.: 2026041200017",
    "Item: LED strip 5 m, 2000 pcs, USD 3,400.00",
]


def slow_stream(operators: int) -> bytes:
    """A page of text moves that draw nothing: within every pypdf limit and no text to stop at,
    but about a second to read."""
    return b"BT /F1 11 Tf\n" + b"1 0 Td\n" * operators + b"ET"


# -- mail -----------------------------------------------------------------------------------------


def mail(name: str, subject: str, text: str, attachments: list[tuple[str, str, bytes]]) -> None:
    msg = EmailMessage()
    msg["From"] = "Maria Lopez <maria.lopez@lopez-retail.example>"
    msg["To"] = "support@ta-support.example"
    msg["Subject"] = subject
    msg["Date"] = DATE
    msg["Message-ID"] = f"<{name}@lopez-retail.example>"
    msg.set_content(text)
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/")
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    # A fixed boundary: the file is the same at every run.
    for index, part in enumerate(msg.walk()):
        if part.is_multipart():
            part.set_boundary(f"==attach-{name}-{index}==")
    (HERE / f"{name}.eml").write_bytes(bytes(msg))


def outlook_msg(subject: str, sender: str, body: str) -> bytes:
    modules = os.environ.get("CFB_NODE_MODULES")
    if not modules:
        sys.exit("set CFB_NODE_MODULES to a node_modules folder holding cfb (see the docstring)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "item.msg"
        subprocess.run(
            ["node", str(HERE / "make_msg.js"), str(out), subject, sender, body],
            check=True,
            env={**os.environ, "NODE_PATH": modules},
        )
        return out.read_bytes()


def main() -> None:
    please = "Hello,\n\nplease see the attached document and confirm the shipping date.\n\nMaria\n"
    pi = pdf([page_stream(PI_LINES)])
    mail("pdf-order", "Shipping date", please, [("PI-2026-0412.pdf", "application/pdf", pi)])
    mail(
        "pdf-decoy-only",
        "Shipping date",
        please,
        [("PI-2026-0412.pdf", "application/pdf", pdf([page_stream(DECOY_LINES)]))],
    )
    mail(
        "pdf-with-new-text-order",
        "Two orders",
        "Hello,\n\nplease cancel order 5505 8403 9277 0013.\nThe PI of the other one is attached.\n\nMaria\n",
        [("PI-2026-0412.pdf", "application/pdf", pi)],
    )
    mail(
        "pdf-encrypted",
        "Shipping date",
        please,
        [("PI-2026-0412.pdf", "application/pdf", encrypted(pi, "lopez-2026"))],
    )
    mail(
        "pdf-owner-password",
        "Shipping date",
        please,
        [("PI-2026-0412.pdf", "application/pdf", encrypted(pi, ""))],
    )
    mail(
        "pdf-broken",
        "Shipping date",
        please,
        [("PI-2026-0412.pdf", "application/pdf", pi[: len(pi) // 3] + b"\x00garbage" * 40)],
    )
    # 500 pages, the order on the first: only the first pages are read.
    mail(
        "pdf-huge",
        "Shipping date",
        please,
        [("catalogue.pdf", "application/pdf", pdf([page_stream(PI_LINES)] * 500, shared_content=True))],
    )
    # 20 pages of 30,000 operators each (one deflated stream of 200 KB): every pypdf limit holds,
    # and reading them all takes far longer than the time bound.
    mail(
        "pdf-slow",
        "Shipping date",
        please,
        [("scan-export.pdf", "application/pdf", pdf([slow_stream(30_000)] * 20, shared_content=True))],
    )
    # A decompression bomb: 50 KB of deflate that would inflate to 50 MB of content stream.
    bomb = pdf([b"BT /F1 11 Tf (x) Tj ET" + b" " * 50_000_000])
    mail("pdf-bomb", "Shipping date", please, [("PI-2026-0412.pdf", "application/pdf", bomb)])
    item = outlook_msg(
        "FW: order to cancel",
        "Maria Lopez <maria.lopez@lopez-retail.example>",
        "Hi team,\r\n\r\nplease cancel Trade Assurance order 1625 3498 7612 3450, "
        "the goods are no longer needed.\r\n\r\nMaria\r\n",
    )
    mail(
        "msg-order",
        "Cancellation",
        "Hello,\n\nsee the forwarded mail.\n\nMaria\n",
        [("FW order to cancel.msg", "application/vnd.ms-outlook", item)],
    )
    order_list = (
        b"order_id;product;quantity;amount\r\n"
        b"7312 0458 8841 2207;LED strip 5 m;2000;3400.00\r\n"
        b"7312045888412208;LED driver 60 W;200;820.50\r\n"
    )
    mail(
        "csv-order",
        "Status of these orders",
        "Hello,\n\nwhere are the orders in the list?\n\nMaria\n",
        [("orders.csv", "text/csv", order_list)],
    )


if __name__ == "__main__":
    main()
