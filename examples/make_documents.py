#!/usr/bin/env python3
"""Generate the example load documents in examples/documents/.

For each example load (L-1001 .. L-1005, matching examples/loads.csv and
examples/loads.json) this writes two one-page PDFs:

    <load>-pod.pdf   proof of delivery
    <load>-rc.pdf    rate confirmation

Standard library only: the PDF objects and the cross-reference table are
written by hand (PDF 1.4, uncompressed, base-14 Helvetica font), and the
output is byte-for-byte deterministic, so re-running the script does not
change committed files.

Usage:  python3 examples/make_documents.py [OUTPUT_DIR]
        (default OUTPUT_DIR: the documents/ folder next to this script)
Check:  qpdf --check examples/documents/L-1001-pod.pdf
        pdftotext examples/documents/L-1001-pod.pdf -
"""

import os
import sys

CARRIERS = {
    "acme-east": ("ACME Freight East LLC", "765432", "1234567",
                  "100 Main St, Dallas, TX 75201"),
    "acme-west": ("ACME Freight West LLC", "765433", "1234568",
                  "2200 Desert Rd, Phoenix, AZ 85004"),
}

# Keep in step with examples/loads.csv and examples/loads.json.
LOADS = [
    dict(load="L-1001", sub="acme-east", customer="Blue River Logistics",
         mc="123456", rate="$2,450.00", pickup=("Dallas", "TX"),
         delivery=("Memphis", "TN"), picked="2026-11-19", delivered="2026-11-20 14:35",
         commodity="Packaged foods, 22 pallets, 38,500 lbs",
         consignee="Riverside Grocers DC", signer="J. Alvarez", po="PO-88231",
         truck=""),
    dict(load="L-1002", sub="acme-east", customer="Northstar Brokerage, Inc.",
         mc="654321", rate="$1,875.50", pickup=("Houston", "TX"),
         delivery=("Atlanta", "GA"), picked="2026-11-20", delivered="2026-11-21 15:40",
         commodity="Auto parts, 14 pallets, 21,200 lbs",
         consignee="Peachtree Auto Supply", signer="M. Chen", po="NS-55012",
         truck=""),
    dict(load="L-1003", sub="acme-east", customer="Blue River Logistics",
         mc="123456", rate="$3,100.00", pickup=("Phoenix", "AZ"),
         delivery=("Denver", "CO"), picked="2026-11-21", delivered="2026-11-22 09:10",
         commodity="Building materials, 18 pallets, 40,100 lbs",
         consignee="Front Range Builders Supply", signer="R. Okafor", po="",
         truck="T-17"),
    dict(load="L-1004", sub="acme-east", customer="Canyon Freight Partners",
         mc="345678", rate="$980.00", pickup=("Los Angeles", "CA"),
         delivery=("Las Vegas", "NV"), picked="2026-11-23", delivered="2026-11-23 18:05",
         commodity="Beverages, 20 pallets, 36,000 lbs",
         consignee="Silver State Beverage Co.", signer="D. Reyes", po="CF-7710",
         truck="T-21"),
    dict(load="L-1005", sub="acme-east", customer="Northstar Brokerage, Inc.",
         mc="654321", rate="$1,420.00", pickup=("Oklahoma City", "OK"),
         delivery=("Little Rock", "AR"), picked="2026-11-24", delivered="2026-11-24 16:20",
         commodity="Paper products, 24 pallets, 18,900 lbs",
         consignee="Arkansas Office Wholesale", signer="T. Nguyen", po="NS-55107",
         truck="T-11"),
]

PAGE_W, PAGE_H = 612, 792  # US Letter, points
LEFT = 72


def pdf_string(text):
    """A PDF literal string; the text is plain ASCII (WinAnsiEncoding)."""
    text.encode("ascii")  # fail loudly on anything else
    return "(" + text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") + ")"


def content_stream(title, lines, footer):
    """Page content: a bold title, a rule, body lines, a signature-style footer."""
    ops = [
        "BT", "/F2 18 Tf", f"{LEFT} 720 Td", pdf_string(title) + " Tj", "ET",
        "0.5 w", f"{LEFT} 708 m {PAGE_W - LEFT} 708 l S",
        "BT", "/F1 11 Tf", "15 TL", f"{LEFT} 684 Td",
    ]
    for line in lines:
        if line:
            ops.append(pdf_string(line) + " Tj")
        ops.append("T*")
    ops += ["ET", f"{LEFT} 140 m {LEFT + 220} 140 l S",
            "BT", "/F1 9 Tf", f"{LEFT} 126 Td", pdf_string(footer) + " Tj", "ET"]
    return ("\n".join(ops) + "\n").encode("ascii")


def build_pdf(title, lines, footer, doc_title):
    """Return the bytes of a complete one-page PDF with a correct xref table."""
    stream = content_stream(title, lines, footer)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        (f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 {PAGE_W} {PAGE_H}] "
         "/Resources << /Font << /F1 4 0 R /F2 5 0 R >> >> /Contents 6 0 R >>").encode(),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica-Bold /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"endstream",
        (f"<< /Title {pdf_string(doc_title)} /Producer (factord examples/make_documents.py) >>").encode(),
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")  # binary comment marks the file as binary
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref_at = len(out)
    out += b"xref\n0 %d\n" % (len(objects) + 1)
    out += b"0000000000 65535 f \n"  # each entry exactly 20 bytes
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += (b"trailer\n<< /Size %d /Root 1 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
            % (len(objects) + 1, len(objects), xref_at))
    return bytes(out)


def pod(load):
    name, mc, usdot, _ = CARRIERS[load["sub"]]
    lines = [
        f"Load {load['load']}",
        "",
        f"Carrier: {name}   MC {mc}   USDOT {usdot}",
        f"Broker: {load['customer']}   MC {load['mc']}",
        f"Truck: {load['truck'] or 'not recorded'}",
        "",
        f"Pickup: {load['pickup'][0]}, {load['pickup'][1]}   on {load['picked']}",
        f"Delivery: {load['delivery'][0]}, {load['delivery'][1]}   on {load['delivered']}",
        f"Consignee: {load['consignee']}",
        f"Commodity: {load['commodity']}",
        "",
        "Received the above goods in apparent good order and condition.",
        "Exceptions: none",
        "",
        f"Signed by: {load['signer']}",
        f"Date: {load['delivered']}",
    ]
    return build_pdf("PROOF OF DELIVERY", lines,
                     f"Consignee signature - {load['signer']}",
                     f"Proof of delivery {load['load']}")


def rate_confirmation(load):
    name, mc, usdot, address = CARRIERS[load["sub"]]
    lines = [
        f"Load {load['load']}",
        "",
        f"Broker: {load['customer']}   MC {load['mc']}",
        f"Carrier: {name}   MC {mc}   USDOT {usdot}",
        f"Carrier address: {address}",
        f"Customer reference (PO): {load['po'] or 'none'}",
        "",
        f"Pickup: {load['pickup'][0]}, {load['pickup'][1]}   on {load['picked']}",
        f"Delivery: {load['delivery'][0]}, {load['delivery'][1]}",
        f"Commodity: {load['commodity']}",
        "Equipment: 53 ft dry van",
        "",
        f"Line haul, all-in: Rate {load['rate']}",
        f"Total carrier pay: {load['rate']} USD",
        "Payment terms: 30 days from receipt of invoice, POD and this confirmation.",
        "",
        f"Agreed by the carrier: {name}",
    ]
    return build_pdf("RATE CONFIRMATION", lines,
                     f"Broker dispatch - {load['customer']}",
                     f"Rate confirmation {load['load']}")


def main(argv):
    here = os.path.dirname(os.path.abspath(__file__))
    out_dir = argv[1] if len(argv) > 1 else os.path.join(here, "documents")
    os.makedirs(out_dir, exist_ok=True)
    for load in LOADS:
        for suffix, make in (("pod", pod), ("rc", rate_confirmation)):
            path = os.path.join(out_dir, f"{load['load']}-{suffix}.pdf")
            data = make(load)
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)  # never leave half a file under the final name
            print(f"wrote {path} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
