// Writes the PDF and DOCX resume fixtures the rag tests read, with libraries other than the readers
// (pdf-lib, docx), so the tests parse files the way real resumes arrive. Run from the repo root:
//   node packages/rag/test-fixtures/make-documents.mjs
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Document, HeadingLevel, Packer, Paragraph, TextRun } from "docx";
import { PDFDocument, StandardFonts } from "pdf-lib";

const here = path.dirname(fileURLToPath(import.meta.url));
// Fixed dates so the PDF is byte-identical on every run (docx stamps the zip entries with the time).
const CREATED = new Date("2026-01-15T09:00:00Z");

async function pdf() {
  const doc = await PDFDocument.create();
  doc.setCreationDate(CREATED);
  doc.setModificationDate(CREATED);
  doc.setProducer("ats-lora fixtures");
  doc.setCreator("ats-lora fixtures");
  const font = await doc.embedFont(StandardFonts.Helvetica);
  const bold = await doc.embedFont(StandardFonts.HelveticaBold);
  const pages = [
    [
      ["Priya Raman", bold, 18],
      ["Senior Site Reliability Engineer", font, 12],
      ["Summary", bold, 14],
      ["Eight years running Kubernetes platforms on AWS EKS for payment workloads.", font, 11],
      ["Cut the p99 checkout latency from 900 ms to 240 ms with Envoy and Istio tuning.", font, 11],
    ],
    [
      ["Experience", bold, 14],
      ["Northwind Payments, 2019-03 to present: led the SEV-1 incident rotation, MTTR down 45%.", font, 11],
      ["Contoso Cloud, 2016-01 to 2019-02: Terraform modules for 140 microservices.", font, 11],
      ["Certifications", bold, 14],
      ["Certified Kubernetes Administrator (CKA), 2021.", font, 11],
    ],
  ];
  for (const lines of pages) {
    const page = doc.addPage([595, 842]);
    let y = 780;
    for (const [text, face, size] of lines) {
      page.drawText(text, { x: 50, y, size, font: face });
      y -= size * 2;
    }
  }
  return Buffer.from(await doc.save({ useObjectStreams: false }));
}

async function docx() {
  const heading = (text) => new Paragraph({ text, heading: HeadingLevel.HEADING_1 });
  const para = (text) => new Paragraph({ children: [new TextRun(text)] });
  const bullet = (text) => new Paragraph({ text, bullet: { level: 0 } });
  const doc = new Document({
    creator: "ats-lora fixtures",
    title: "Resume: Tomasz Nowak",
    sections: [
      {
        children: [
          new Paragraph({ text: "Tomasz Nowak", heading: HeadingLevel.TITLE }),
          para("Financial Accountant, ACCA member, Warsaw"),
          heading("Experience"),
          para("Fabrikam Logistics, 2020-06 to present: month-end close in SAP FICO for 12 entities."),
          bullet("Automated the F110 payment run and cut duplicate payments to zero."),
          bullet("Led the IFRS 16 lease accounting project across 300 contracts."),
          heading("Education"),
          para("MSc Finance and Accounting, Warsaw School of Economics, 2018."),
        ],
      },
    ],
  });
  const bytes = await Packer.toBuffer(doc);
  return bytes;
}

fs.writeFileSync(path.join(here, "resume-priya-raman.pdf"), await pdf());
fs.writeFileSync(path.join(here, "resume-tomasz-nowak.docx"), await docx());
process.stdout.write("wrote resume-priya-raman.pdf and resume-tomasz-nowak.docx\n");
