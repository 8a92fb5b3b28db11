"""Writes the document fixtures next to this file (run by hand; the outputs are committed):

    python tests/data/documents/make_fixtures.py

needs reportlab, fpdf2, python-docx and ebooklib. Each document holds facts found nowhere else in the test
data, so a question about them can only be answered from that document."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

HERE = Path(__file__).parent

PAPER_TITLE = "Plant-Derived Exosomes After Fractional Laser: A Split-Face Trial"
PAPER_AUTHORS = "Ingrid Lindqvist, Tomas Berglund and Aiko Moriyama"
PAPER = [
    (
        "Abstract",
        [
            "Fractional laser resurfacing leaves the skin red and warm for several days. We asked whether "
            "a serum of exosome-like vesicles isolated from centella leaves shortens this recovery. "
            "Forty-eight volunteers with photodamaged cheeks received one laser session on both sides of "
            "the face and applied the vesicle serum to one side only.",
        ],
    ),
    (
        "1. Introduction",
        [
            "Ablative and non-ablative fractional lasers create microscopic treatment zones surrounded by "
            "intact tissue. The surrounding tissue repopulates the zones within days, but erythema and "
            "transepidermal water loss remain elevated for up to a week. Patients often describe this "
            "downtime as the main reason to postpone further sessions.",
            "Vesicles secreted by plant cells carry proteins, lipids and small RNAs. Unlike vesicles from "
            "human stem cells, they raise no questions of donor screening, and they can be produced in "
            "kilogram quantities from greenhouse crops. Their effect on skin after laser treatment has "
            "not been tested in a controlled trial.",
        ],
    ),
    (
        "2. Methods",
        [
            "The trial ran at the Uppsala Skin Research Unit between March and September 2024. Each "
            "participant served as their own control: a computer-generated list decided which cheek "
            "received the vesicle serum and which received the vehicle gel alone.",
            "The vesicles were isolated by tangential flow filtration and stored at four degrees Celsius "
            "for no longer than nineteen days before use. Participants applied two pumps of serum twice "
            "daily for fourteen days, starting six hours after the laser session.",
            "Redness was measured with a colorimeter on days one, three, seven and fourteen by a "
            "technician who did not know the allocation. Water loss was measured with an open-chamber "
            "evaporimeter under controlled humidity.",
        ],
    ),
    (
        "3. Results",
        [
            "All forty-eight participants completed the trial. On day seven the treated cheeks showed "
            "thirty-one percent less redness than the control cheeks, and water loss had returned to "
            "baseline two days earlier. By day fourteen the difference in redness was no longer "
            "significant.",
            "Three participants reported mild itching on the treated side, which resolved without "
            "treatment. No participant developed hyperpigmentation on either side of the face.",
            "Participants were also asked each evening which cheek felt more comfortable. From the "
            "second to the sixth day, a clear majority named the treated cheek; afterwards most could "
            "no longer tell the two sides apart. Photographs taken on day three were rated by two "
            "dermatologists, who preferred the treated side in thirty-five of the forty-eight pairs.",
            "The effect did not depend on age or on skin phototype. Smokers recovered more slowly on "
            "both sides, but the difference between the treated and the control cheek was similar in "
            "smokers and non-smokers.",
        ],
    ),
    (
        "4. Discussion",
        [
            "The effect was largest in the first week, when patients find the downtime most troublesome. "
            "We cannot tell from this trial whether the vesicles themselves or the sugars that remain "
            "after filtration account for the effect; a trial with a sugar-matched vehicle is planned.",
            "Earlier reports on vesicles from human mesenchymal cells described a similar acceleration "
            "of recovery after laser treatment, but those studies compared patients with one another "
            "rather than the two sides of one face, and their groups differed in age and skin type. "
            "A split-face design removes most of these differences, although it cannot rule out that "
            "vesicles applied to one cheek reach the other through the hands or the pillow.",
        ],
    ),
    (
        "5. Limitations",
        [
            "The trial lasted two weeks, so it says nothing about scarring or pigment changes that "
            "appear months later. All participants were recruited in one city and most had light skin; "
            "darker phototypes, which are more prone to pigment changes after lasers, need a trial of "
            "their own. The serum was made in a single batch, and batches of plant vesicles are known "
            "to vary with the season in which the leaves are harvested.",
            "The study was funded by the Nordic Skin Foundation, which had no role in its design or in "
            "the analysis of the data.",
        ],
    ),
]

REPORT_TITLE = "Storage Stability of Cosmetic Exosome Serums"
REPORT_AUTHOR = "Helena Marsh"
REPORT_DATE = dt.datetime(2025, 4, 17, 9, 30)
REPORT = [
    (
        "Summary",
        [
            "We stored twelve commercial exosome serums at three temperatures for six months and counted "
            "intact vesicles every four weeks by nanoparticle tracking analysis.",
        ],
    ),
    (
        "Findings",
        [
            "Serums kept in the refrigerator retained most of their vesicles. At room temperature the "
            "median serum lost half of its intact vesicles within seven weeks, and serums in clear glass "
            "bottles lost them faster than serums in opaque airless pumps.",
            "Freeze-dried powders that are mixed with water before use were the most stable format: "
            "after six months at room temperature they still held ninety-two percent of their vesicles.",
            "Labels rarely helped the buyer. Only two of the twelve products printed a vesicle count, "
            "and neither printed the date on which it had been measured.",
        ],
    ),
    (
        "Advice for buyers",
        [
            "Keep opened serums in the refrigerator, prefer opaque airless packaging, and use a bottle "
            "within eight weeks of opening it.",
        ],
    ),
]

DOCX_TITLE = "Clinic Protocol for Exosome Facials"
DOCX = [
    (
        1,
        "Before the treatment",
        [
            "Ask every client about retinoid use in the previous five days; retinoids must be paused for "
            "that long before a microneedling session with exosomes.",
        ],
    ),
    (
        2,
        "Skin preparation",
        [
            "Cleanse twice, then wipe the face with chlorhexidine solution and let it dry for one full "
            "minute before numbing cream is applied.",
        ],
    ),
    (
        1,
        "During the treatment",
        [
            "Use a needle depth of half a millimetre on the forehead and one millimetre on the cheeks.",
        ],
    ),
    (
        2,
        "Applying the exosome vial",
        [
            "Open the lyophilized vial only after the needling is finished, dissolve it in the supplied "
            "diluent and spread it over the whole face within ten minutes.",
        ],
    ),
    (
        1,
        "Aftercare",
        [
            "Clients should avoid sweating workouts and saunas for forty-eight hours after the facial.",
        ],
    ),
]

EPUB_TITLE = "A Short Handbook of Skin Messengers"
EPUB_AUTHOR = "Rosalind Achebe"
EPUB = [
    (
        "Chapter 1: Messengers Between Cells",
        [
            (
                "",
                "Cells do not only divide and die; they talk. The oldest known channel is the gap "
                "junction, a pore that joins two neighbouring cells like a doorway.",
            ),
            (
                "Vesicles as letters",
                "The author likes to compare exosomes to sealed letters: the envelope "
                "protects the message until a distant cell opens it. This comparison first appeared in a "
                "lecture she gave in Lagos in 2011.",
            ),
        ],
    ),
    (
        "Chapter 2: Messengers in a Bottle",
        [
            (
                "",
                "A bottle of serum is a poor postman. Light, warmth and air break the envelopes long "
                "before they reach the skin.",
            ),
            (
                "What to look for",
                "The handbook recommends choosing products that state the vesicle "
                "source species, for example sheep adipose tissue or rose callus culture, on the label.",
            ),
        ],
    ),
]


def _wrap(text: str, width: float, font: str, size: float):
    """Lines no wider than `width`; a long word at a line end is hyphenated, as typesetters do."""
    from reportlab.pdfbase.pdfmetrics import stringWidth

    lines, line = [], ""
    for word in text.split():
        trial = f"{line} {word}".strip()
        if stringWidth(trial, font, size) <= width:
            line = trial
            continue
        cut = 0
        if len(word) >= 8 and word.isalpha():
            for i in range(len(word) - 3, 2, -1):
                if stringWidth(f"{line} {word[:i]}-".strip(), font, size) <= width:
                    cut = i
                    break
        if cut:
            lines.append(f"{line} {word[:cut]}-".strip())
            line = word[cut:]
        else:
            lines.append(line)
            line = word
    if line:
        lines.append(line)
    return lines


def make_paper(path: Path) -> None:
    """Two columns, a running header and page numbers on every page, hyphenated line ends."""
    from reportlab.pdfgen import canvas

    size6x9 = (432, 648)  # a journal's trim size: the paper runs over three pages
    c = canvas.Canvas(str(path), pagesize=size6x9, invariant=1)
    c.setTitle("")  # many real papers carry no title in their metadata: it must come from page 1
    c._doc.setDateFormatter(lambda *_: "D:20250302120000+00'00'")
    width, height = size6x9
    margin, gutter, size, leading = 40, 18, 10, 12.5
    col_w = (width - 2 * margin - gutter) / 2
    page = 1

    def furniture():
        c.setFont("Helvetica", 8)
        c.drawString(margin, height - 30, "Journal of Applied Cosmetic Science")
        c.drawRightString(width - margin, height - 30, "Vol. 12 (2025) 141-147")
        c.drawCentredString(width / 2, 30, str(140 + page))

    furniture()
    c.setFont("Helvetica-Bold", 14)
    y = height - 70
    for line in _wrap(PAPER_TITLE, width - 2 * margin, "Helvetica-Bold", 14):
        c.drawCentredString(width / 2, y, line)
        y -= 18
    c.setFont("Helvetica", 10)
    c.drawCentredString(width / 2, y - 4, PAPER_AUTHORS)
    top = y - 30
    col, y = 0, top
    bottom = 60

    def advance(need: float):
        nonlocal col, y, page, top
        if y - need >= bottom:
            return
        if col == 0:
            col, y = 1, top
        else:
            c.showPage()
            page += 1
            furniture()
            top = height - 52
            col, y = 0, top

    for heading, paragraphs in PAPER:
        advance(3 * leading)
        c.setFont("Times-Bold", 11)
        c.drawString(margin + col * (col_w + gutter), y, heading)
        y -= leading + 2
        for text in paragraphs:
            for line in _wrap(text, col_w, "Times-Roman", size):
                advance(leading)
                c.setFont("Times-Roman", size)
                c.drawString(margin + col * (col_w + gutter), y, line)
                y -= leading
            y -= 6
    c.showPage()
    c.save()


def make_report(path: Path) -> None:
    """One column with the title, author and date in the PDF's metadata, a running footer."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle(REPORT_TITLE)
    c.setAuthor(REPORT_AUTHOR)
    c.setCreator("make_fixtures.py")
    c._doc.setDateFormatter(lambda *_: REPORT_DATE.strftime("D:%Y%m%d%H%M%S+00'00'"))
    width, height = A4
    margin, y = 72, height - 90
    page = 1

    def footer():
        c.setFont("Helvetica", 8)
        c.drawString(margin, 40, "Marsh Laboratory - internal report")
        c.drawRightString(width - margin, 40, f"Page {page} of 2")

    footer()
    c.setFont("Helvetica-Bold", 18)
    c.drawString(margin, y, REPORT_TITLE)
    y -= 40
    for heading, paragraphs in REPORT:
        if heading == "Findings":  # the findings start a new page, as reports do
            c.showPage()
            page += 1
            footer()
            y = height - 90
        c.setFont("Helvetica-Bold", 13)
        c.drawString(margin, y, heading)
        y -= 20
        for text in paragraphs:
            for line in _wrap(text, width - 2 * margin, "Helvetica", 11):
                c.setFont("Helvetica", 11)
                c.drawString(margin, y, line)
                y -= 14
            y -= 8
    c.showPage()
    c.save()


WEBPAGE_TITLE = "Why Your Exosome Serum Stings"
WEBPAGE_URL = "https://skin-notes.example/exosome-serum-sting"
WEBPAGE = [
    (
        "",
        [
            "A stinging feeling in the first minute after applying an exosome serum is rarely caused by the "
            "exosomes themselves. In most cases it comes from the preservative system, and phenoxyethanol "
            "above one percent is the usual suspect on skin that was exfoliated the same day.",
            "Another cause is the acidity of the base. Serums formulated below pH five can sting on skin "
            "with a damaged barrier, especially after retinoid use, while the same serum feels neutral on "
            "intact skin. A patch test on the inner forearm for three evenings tells you which case is yours.",
        ],
    ),
    (
        "When to stop",
        [
            "Stinging that lasts longer than ten minutes, or redness that spreads beyond the area where the "
            "serum was applied, is a reason to stop and rinse with lukewarm water. Hives or swelling of the "
            "lips are signs of an allergy and need a doctor the same day.",
        ],
    ),
]


def make_webpage(path: Path) -> None:
    """A web page saved with a browser's "Print to PDF": justified text, the date and title above
    every page and the address and page count below, as browsers print them (written by fpdf2,
    a second PDF writer besides reportlab)."""
    from fpdf import FPDF

    class Page(FPDF):
        def header(self):
            self.set_font("Helvetica", size=8)
            self.cell(0, 6, "5/3/25, 10:14 AM", align="L")
            self.set_x(self.l_margin)
            self.cell(0, 6, WEBPAGE_TITLE, align="C", new_x="LMARGIN", new_y="NEXT")
            self.ln(6)

        def footer(self):
            self.set_y(-14)
            self.set_font("Helvetica", size=8)
            self.cell(0, 6, WEBPAGE_URL, align="L")
            self.set_x(self.l_margin)
            self.cell(0, 6, f"{self.page_no()}/{{nb}}", align="R")

    pdf = Page(format=(300, 330), unit="pt")
    pdf.set_creation_date(dt.datetime(2025, 5, 3, 10, 14, tzinfo=dt.timezone.utc))
    pdf.set_title(WEBPAGE_TITLE)
    pdf.set_margins(24, 24, 24)
    pdf.set_auto_page_break(True, margin=30)
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 15)
    pdf.multi_cell(0, 18, WEBPAGE_TITLE, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)
    for heading, paragraphs in WEBPAGE:
        if heading:
            pdf.set_font("Helvetica", "B", 12)
            pdf.multi_cell(0, 15, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("Helvetica", size=10)
        for text in paragraphs:
            pdf.multi_cell(0, 12.5, text, align="J", new_x="LMARGIN", new_y="NEXT")
            pdf.ln(5)
    pdf.output(str(path))


def make_scanned(path: Path) -> None:
    """A page that is only a picture of text, as a scanner makes: no text layer."""
    from PIL import Image, ImageDraw
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    image = Image.new("L", (600, 200), 255)
    ImageDraw.Draw(image).text((20, 80), "Scanned page: exosome serum instructions", fill=0)
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.drawImage(ImageReader(image), 72, 500, width=450, height=150)
    c.showPage()
    c.save()


def make_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = DOCX_TITLE
    document.core_properties.author = "Marta Oliveira"
    document.core_properties.created = dt.datetime(2025, 2, 3, 10, 0)
    document.add_heading(DOCX_TITLE, level=0)
    for level, heading, paragraphs in DOCX:
        document.add_heading(heading, level=level)
        for text in paragraphs:
            document.add_paragraph(text)
    document.add_paragraph("Bring the signed consent form", style="List Bullet")
    document.add_paragraph("Arrive without make-up", style="List Bullet")
    document.save(str(path))


def make_epub(path: Path) -> None:
    from ebooklib import epub

    book = epub.EpubBook()
    book.set_identifier("articleqa-fixture-skin-messengers")
    book.set_title(EPUB_TITLE)
    book.set_language("en")
    book.add_author(EPUB_AUTHOR)
    book.add_metadata("DC", "date", "2019-06-01")
    chapters = []
    for number, (title, sections) in enumerate(EPUB, 1):
        body = [f"<h1>{title}</h1>"]
        for heading, text in sections:
            if heading:
                body.append(f"<h2>{heading}</h2>")
            body.append(f"<p>{text}</p>")
        chapter = epub.EpubHtml(title=title, file_name=f"chapter{number}.xhtml", lang="en")
        chapter.content = "<html><body>" + "".join(body) + "</body></html>"
        book.add_item(chapter)
        chapters.append(chapter)
    book.toc = chapters
    book.add_item(epub.EpubNcx())
    book.add_item(epub.EpubNav())
    book.spine = ["nav", *chapters]
    epub.write_epub(str(path), book)


def truth() -> dict:
    """The text each PDF should read as (for the extraction measurement in docs/formats.md)."""

    def flat(sections):
        return "\n\n".join(h + "\n\n" + "\n\n".join(ps) for h, ps in sections)

    return {
        "paper.pdf": PAPER_TITLE + "\n\n" + PAPER_AUTHORS + "\n\n" + flat(PAPER),
        "report.pdf": REPORT_TITLE + "\n\n" + flat(REPORT),
        "webpage.pdf": WEBPAGE_TITLE + "\n\n" + flat(WEBPAGE),
    }


if __name__ == "__main__":
    make_paper(HERE / "paper.pdf")
    make_report(HERE / "report.pdf")
    make_webpage(HERE / "webpage.pdf")
    make_scanned(HERE / "scanned.pdf")
    make_docx(HERE / "protocol.docx")
    make_epub(HERE / "handbook.epub")
    (HERE / "truth.json").write_text(json.dumps(truth(), indent=1) + "\n")
    print("wrote", ", ".join(sorted(p.name for p in HERE.iterdir() if p.suffix != ".py")))
