"""Generate the demo documents in samples/ and the parser test fixtures in tests/fixtures/.

All samples describe one fictional company, Northwind Robotics, so a demo question can be
answered from one file with a citation. The outputs are committed; re-run this only to change
them:

    .venv/bin/pip install reportlab   # generation only, not a runtime dependency
    .venv/bin/python scripts/make_samples.py

Output is deterministic (fixed timestamps and seeds) except encrypted.pdf, whose encryption
salt is random by design.
"""

from __future__ import annotations

import csv
import io
import random
import zipfile
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "docs"
FIXTURES = ROOT / "tests" / "fixtures"
FIXED_TIME = datetime(2025, 12, 1, 9, 0, 0)
AUTHOR = "Northwind Robotics"

HANDBOOK_MD = """\
# Northwind Robotics Engineering Handbook

This handbook describes how the engineering team at Northwind Robotics builds, reviews and ships
the software that runs our warehouse robots. It is owned by the Head of Engineering, Maria Jansen.

## Languages we use

Our fleet controller is written in Rust. We chose Rust for memory safety on the robots, where a
crash stops a picking line.

The warehouse simulator and our data tooling are written in Python 3.12. The operator dashboard
is a TypeScript single-page application.

## Code review rules

Every change to the main branch goes through a pull request. The rules are:

- Every pull request needs approval from two reviewers, one of whom owns the changed code.
- Changes to the fleet controller's safety module also need sign-off from the safety officer.
- Reviewers respond within one working day.
- Authors keep pull requests under 400 changed lines where possible.

## Deployment process

We deploy the fleet controller on Tuesdays and Thursdays only, never on Fridays.

A release first goes to a canary group of 5% of the robots for two hours. If the error rate of
the canary group stays below 0.1%, the release rolls out to the rest of the fleet.

### Rollbacks

Any engineer on call may roll back a release without asking for approval. A rollback takes less
than ten minutes because every robot keeps the previous firmware image.

## Testing

Every pull request runs the unit tests and a 30-minute run of the warehouse simulator. Changes
that lower the simulated picking rate by more than 2% are blocked.
"""

INCIDENT_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Northwind Robotics - Incident Response Policy</title>
</head>
<body>
<h1>Incident Response Policy</h1>
<p>This policy describes how Northwind Robotics responds to incidents that affect robots in
customer warehouses or the services that control them.</p>

<h2>On-call rotation</h2>
<p>Every engineering team runs a weekly on-call rotation with a primary and a secondary
engineer. The rotation changes every Monday at 10:00 Central European Time.</p>

<h2>Severity levels</h2>
<ul>
<li>Severity 1: robots are stopped at a customer site or a safety issue is suspected.</li>
<li>Severity 2: picking throughput at a customer site is reduced by more than 20%.</li>
<li>Severity 3: a problem with no immediate customer impact.</li>
</ul>

<h2>Acknowledgement times</h2>
<p>A severity 1 incident must be acknowledged within 15 minutes, at any hour of the day.
A severity 2 incident must be acknowledged within one hour during business hours.
Severity 3 incidents are handled in the next working day.</p>

<h2>Escalation</h2>
<p>If the primary on-call engineer does not acknowledge a page within 15 minutes, the page
escalates to the secondary engineer. If neither responds within 30 minutes, the page escalates
to the Head of Engineering, Maria Jansen.</p>

<h2>Postmortems</h2>
<p>Every severity 1 incident gets a blameless postmortem, published within five working days
of the incident.</p>
</body>
</html>
"""

RELEASE_NOTES_TXT = """\
Northwind Fleet Controller - Release Notes

Version 2.4.0 (released 18 November 2025)

- Added battery-aware task scheduling: robots below 20% charge are no longer assigned picks.
- Added support for the Tilburg warehouse layout with 14 charging stations.
- Fixed a bug where two robots could reserve the same aisle after a network partition.

Version 2.3.1 (released 2 October 2025)

- Fixed a memory leak in the path planner that caused restarts after about 9 days of uptime.
- The operator dashboard now shows the firmware version of each robot.

Version 2.3.0 (released 21 August 2025)

- New obstacle detection model that reduces emergency stops by 35%.
- Deprecated the v1 telemetry API; it will be removed in version 3.0.
"""

OFFICES = [
    ("office", "city", "country", "postal_code", "address", "employees", "opened"),
    ("Headquarters", "Eindhoven", "Netherlands", "5616 LZ", "Kastanjelaan 12", "230", "2018"),
    ("Warehouse and test site", "Tilburg", "Netherlands", "5047 TK", "Havenweg 40", "95", "2025"),
    ("Sales office", "Munich", "Germany", "80331", "Sendlinger Strasse 7", "40", "2021"),
    ("Service hub", "Boston", "United States", "02110", "100 Atlantic Avenue", "47", "2023"),
]

REPORT_PAGES = [
    (
        "Financial highlights",
        [
            "Northwind Robotics had its strongest year so far in 2025.",
            "Revenue for 2025 was EUR 48.2 million, up 31% from EUR 36.8 million in 2024.",
            "Recurring revenue from robot fleet subscriptions grew to EUR 29.5 million, 61% of "
            "total revenue. The operating margin improved from 4% to 9%.",
        ],
    ),
    (
        "People",
        [
            "At the end of 2025 Northwind Robotics employed 412 people, up from 305 a year "
            "earlier.",
            "58% of our employees work in engineering. We hired 141 people during the year and "
            "staff turnover was 7%.",
        ],
    ),
    (
        "Operations",
        [
            "In September 2025 we opened our new warehouse and test site in Tilburg, the "
            "Netherlands. The 18,000 square metre building hosts our robot test lines and "
            "spare parts stock.",
            "At year end 1,240 Northwind robots were deployed at 37 customer sites in six "
            "countries.",
        ],
    ),
]

TRAVEL_RATES = [
    ("City", "Hotel cap per night", "Daily allowance"),
    ("Amsterdam", "EUR 190", "EUR 60"),
    ("Tilburg", "EUR 130", "EUR 45"),
    ("Munich", "EUR 170", "EUR 55"),
    ("Boston", "USD 260", "USD 75"),
]

ROADMAP_SLIDES = [
    ("Product Roadmap 2026", ["Northwind Robotics - plans for the coming year"]),
    (
        "Q1 2026: Fleet Controller 3.0",
        [
            "One controller coordinates robots across several warehouses",
            "Battery-aware scheduling becomes the default",
            "The v1 telemetry API is removed",
        ],
    ),
    (
        "Q2 2026: PickAssist arm pilot",
        [
            "The PickAssist robotic arm enters a pilot with two customers",
            "Each arm is expected to handle 600 picks per hour",
        ],
    ),
    (
        "H2 2026: Expansion",
        [
            "Open a second US service hub in Columbus, Ohio",
            "Grow the deployed fleet to 2,000 robots",
        ],
    ),
]


def normalize_zip(path: Path) -> None:
    """Rewrite an OOXML file with fixed entry timestamps so re-generation is byte-stable."""
    with zipfile.ZipFile(path) as zin:
        entries = [(info.filename, zin.read(info)) for info in zin.infolist()]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=FIXED_TIME.timetuple()[:6])
            info.compress_type = zipfile.ZIP_DEFLATED
            zout.writestr(info, data)
    path.write_bytes(buf.getvalue())


def make_pdf(path: Path, pages: list[tuple[str, list[str]]], title: str) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate

    styles = getSampleStyleSheet()
    story: list[object] = [Paragraph(title, styles["Title"])]
    for i, (heading, paragraphs) in enumerate(pages):
        if i:
            story.append(PageBreak())
        story.append(Paragraph(heading, styles["Heading1"]))
        story.extend(Paragraph(p, styles["BodyText"]) for p in paragraphs)
    doc = SimpleDocTemplate(str(path), pagesize=A4, title=title, author=AUTHOR, invariant=1)
    doc.build(story)


def make_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.author = AUTHOR
    document.core_properties.title = "Travel Policy"
    document.core_properties.created = FIXED_TIME
    document.core_properties.modified = FIXED_TIME
    document.core_properties.last_modified_by = AUTHOR
    document.add_heading("Travel Policy", level=1)
    document.add_paragraph(
        "This policy applies to all Northwind Robotics employees who travel for work, including "
        "visits to customer warehouses."
    )
    document.add_heading("Booking travel", level=2)
    document.add_paragraph(
        "All business travel must be booked through the TravelDesk portal at least 14 days "
        "before departure."
    )
    document.add_paragraph(
        "Flights shorter than six hours are booked in economy class. Longer flights may be "
        "booked in premium economy. Trains are preferred for trips under 500 kilometres."
    )
    document.add_heading("Hotels and daily allowances", level=2)
    document.add_paragraph("The hotel cap and the daily allowance depend on the destination:")
    table = document.add_table(rows=0, cols=len(TRAVEL_RATES[0]))
    table.style = "Table Grid"
    for row in TRAVEL_RATES:
        cells = table.add_row().cells
        for cell, value in zip(cells, row, strict=True):
            cell.text = value
    document.add_heading("Expense claims", level=2)
    document.add_paragraph(
        "Submit expense claims with receipts within 30 days of returning from a trip. Claims "
        "submitted later are only paid with approval from the finance director."
    )
    document.save(str(path))
    normalize_zip(path)


def make_pptx(path: Path) -> None:
    from pptx import Presentation

    deck = Presentation()
    deck.core_properties.author = AUTHOR
    deck.core_properties.title = ROADMAP_SLIDES[0][0]
    deck.core_properties.created = FIXED_TIME
    deck.core_properties.modified = FIXED_TIME
    deck.core_properties.last_modified_by = AUTHOR
    title_layout, bullets_layout = deck.slide_layouts[0], deck.slide_layouts[1]
    for i, (title, bullets) in enumerate(ROADMAP_SLIDES):
        slide = deck.slides.add_slide(title_layout if i == 0 else bullets_layout)
        slide.shapes.title.text = title
        body = slide.placeholders[1].text_frame
        body.text = bullets[0]
        for bullet in bullets[1:]:
            body.add_paragraph().text = bullet
    deck.save(str(path))
    normalize_zip(path)


def make_csv(path: Path, rows: Sequence[Sequence[str]], encoding: str) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode(encoding))


def make_samples() -> None:
    SAMPLES.mkdir(exist_ok=True)
    (SAMPLES / "engineering-handbook.md").write_text(HANDBOOK_MD, encoding="utf-8")
    (SAMPLES / "incident-response.html").write_text(INCIDENT_HTML, encoding="utf-8")
    (SAMPLES / "release-notes.txt").write_text(RELEASE_NOTES_TXT, encoding="utf-8")
    make_csv(SAMPLES / "office-locations.csv", OFFICES, "utf-8")
    make_pdf(
        SAMPLES / "annual-report-2025.pdf", REPORT_PAGES, "Northwind Robotics Annual Report 2025"
    )
    make_docx(SAMPLES / "travel-policy.docx")
    make_pptx(SAMPLES / "product-roadmap.pptx")


def make_fixtures() -> None:
    import pikepdf

    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "empty.txt").write_bytes(b"")
    rng = random.Random(20251201)
    garbage = bytes(rng.randrange(256) for _ in range(2048))
    (FIXTURES / "corrupt.pdf").write_bytes(b"%PDF-1.7\n" + garbage)
    (FIXTURES / "binary.txt").write_bytes(b"\x7fELF\x02\x01\x01\x00" + garbage + b"\x00" * 64)
    (FIXTURES / "latin1.txt").write_bytes(
        "Café Müller in Zürich\n\n"
        "The façade of our office on the Bahnhofstraße was repainted in 2025. "
        "Señor García signed the reçu for the work.\n".encode("latin-1")
    )
    make_csv(
        FIXTURES / "cp932.csv",
        [
            ("拠点", "都市", "従業員数", "備考"),
            ("本社", "東京", "120", "ロボット制御ソフトウェアの開発を担当しています"),
            ("倉庫", "大阪", "45", "部品の在庫と出荷を管理しています"),
            ("営業所", "名古屋", "18", "中部地方の顧客を担当しています"),
        ],
        "cp932",
    )
    plain = FIXTURES / "_plain.pdf"
    make_pdf(plain, [("Confidential", ["The launch code is 0000."])], "Encrypted fixture")
    with pikepdf.open(plain) as pdf:
        pdf.save(
            FIXTURES / "encrypted.pdf",
            encryption=pikepdf.Encryption(owner="northwind-owner", user="northwind", R=6),
        )
    plain.unlink()


if __name__ == "__main__":
    make_samples()
    make_fixtures()
    for folder in (SAMPLES, FIXTURES):
        for f in sorted(folder.iterdir()):
            print(f"{f.relative_to(ROOT)}  {f.stat().st_size:,} bytes")
