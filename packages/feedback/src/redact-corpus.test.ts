import { describe, expect, it } from "vitest";
import { redactText, redactValue } from "./redact.js";

/**
 * Contact lines as they appear on real resumes (and in what models answer about them), each with the exact
 * text `--redact` must produce. The first block is what an adversarial run found leaking; the rest are the
 * usual formats. Every number and address here is made up.
 */
const MASKED: ReadonlyArray<readonly [string, string]> = [
  // Found leaking: labelled and unseparated phone numbers.
  ["Mobile: 1232456789", "Mobile: [PHONE]"],
  ["Ph: 1230456789", "Ph: [PHONE]"],
  ["M: 1237345378900", "M: [PHONE]"],
  ["Mobile : 91- 1235456789", "Mobile : [PHONE]"],
  ["Tel: 4274416", "Tel: [PHONE]"],
  ["688 - 754 - 1489", "[PHONE]"],
  ["Office: 1239345/7890906", "Office: [PHONE]"],
  // Found half masked as "717- [PHONE]".
  ["Call 717- 555-0134 after 5pm", "Call [PHONE] after 5pm"],
  // Found leaking: reversed and non-ASCII e-mail addresses.
  ["Email: moc.liamtoh@eodnhoj", "Email: [EMAIL]"],
  ["moc.liamtoh@eod.nhoj", "[EMAIL]"],
  ["jöhn.doe@exämple.de", "[EMAIL]"],
  ["Kontakt: müller@firma.de", "Kontakt: [EMAIL]"],
  // International formats.
  ["+44 (0)20 7946 0958", "[PHONE]"],
  ["+44 (0) 20 7946 0958 (UK)", "[PHONE] (UK)"],
  ["+91 98765 43210", "[PHONE]"],
  ["0049 30 1234567", "[PHONE]"],
  ["+33 (0)1 23 45 67 89", "[PHONE]"],
  ["(+49) 30 901820", "[PHONE]"],
  ["+7 (495) 123-45-67", "[PHONE]"],
  ["WhatsApp: +971 50 123 4567", "WhatsApp: [PHONE]"],
  ["+1.415.555.0142", "[PHONE]"],
  ["tel:+14155550142", "tel:[PHONE]"],
  ["Cell: +1-415-555-0142 ext. 12", "Cell: [PHONE]"],
  ["+1 555 123 4567", "[PHONE]"],
  // National formats.
  ["(555) 123-4567", "[PHONE]"],
  ["555.123.4567", "[PHONE]"],
  ["1-800-555-0199", "[PHONE]"],
  ["Home: (020) 7946 0958", "Home: [PHONE]"],
  ["T: 020 7946 0958 | M: 07700 900123", "T: [PHONE] | M: [PHONE]"],
  ["Tel.: 030/1234567", "Tel.: [PHONE]"],
  ["Tel. 612 345 678", "Tel. [PHONE]"],
  ["Phone: 555 1234", "Phone: [PHONE]"],
  ["Phone No.: +91-98765-43210", "Phone No.: [PHONE]"],
  ["Mob. No. 9876543210", "Mob. No. [PHONE]"],
  ["Contact: 98765 43210, 91234 56789", "Contact: [PHONE], [PHONE]"],
  ["9876543210", "[PHONE]"],
  ["9876543210,9123456789", "[PHONE],[PHONE]"],
  ["Fax: +44 20 7946 0959", "Fax: [PHONE]"],
  // E-mail addresses.
  ["jane.doe+jobs@gmail.com", "[EMAIL]"],
  ["a.kumar@mail.cs.uni-example.edu", "[EMAIL]"],
  ['"john doe"@example.com', "[EMAIL]"],
  ["E-mail: Jane.Doe@Example.COM", "E-mail: [EMAIL]"],
  ["mailto:o'brien@example.ie", "mailto:[EMAIL]"],
  ["Email: jane@example.com.", "Email: [EMAIL]."],
  ["<jane@example.com>", "<[EMAIL]>"],
  ["'jane@example.com'", "'[EMAIL]'"],
  // Obfuscated e-mail addresses.
  ["jane.doe [at] example [dot] com", "[EMAIL]"],
  ["jane.doe(at)example(dot)com", "[EMAIL]"],
  ["write to jane.doe at example dot com", "write to [EMAIL]"],
  ["jane {at} example.co.uk", "[EMAIL]"],
  ["jane @ example.com", "[EMAIL]"],
  // Profile links name the person: masked as [PROFILE].
  ["linkedin.com/in/jane-doe-12345678", "[PROFILE]"],
  ["https://www.linkedin.com/in/janedoe/", "[PROFILE]"],
  ["github.com/janedoe", "[PROFILE]"],
  ["GitHub: https://github.com/jdoe/resume-parser.", "GitHub: [PROFILE]."],
  ["janedoe.github.io", "[PROFILE]"],
  ["twitter.com/jane_doe and x.com/janedoe", "[PROFILE] and [PROFILE]"],
  ["stackoverflow.com/users/1234567/jane", "[PROFILE]"],
  // Whole contact lines.
  [
    "Jane Doe | +1 (415) 555-0142 | jane@example.com | San Francisco, CA 94105",
    "Jane Doe | [PHONE] | [EMAIL] | San Francisco, CA 94105",
  ],
  [
    "Email - priya_sharma99@yahoo.co.in / Phone - +91 9876543210",
    "Email - [EMAIL] / Phone - [PHONE]",
  ],
  [
    "Mobile: 1232456789 • Email: müller@firma.de • linkedin.com/in/mueller",
    "Mobile: [PHONE] • Email: [EMAIL] • [PROFILE]",
  ],
  ['{"name": "Ana Ruiz", "email": "ana.ruiz@example.com", "phone": "688 - 754 - 1489"}', '{"name": "Ana Ruiz", "email": "[EMAIL]", "phone": "[PHONE]"}'],
];

/** Lines a resume is full of that must come out exactly as they went in. */
const UNCHANGED: readonly string[] = [
  "2019-2023",
  "2019 - 2023",
  "2015–2019",
  "Jan 2019 – Present",
  "Software Engineer (2019 - 2023)",
  "12/05/2021",
  "05/2019 - 03/2023",
  "2019-01-15",
  "15.01.2020",
  "2021-05-12 14:30",
  "2026-09-14T10:22:05Z",
  "Salary: 120000",
  "Expected CTC: 1500000 INR",
  "$120,000 - $150,000",
  "1 250 000 EUR",
  "Budget 2,500,000 USD",
  "INR 1 500 000",
  "€1 250 000",
  "Python 3.11.7",
  "v2.10.3",
  "GPA 3.8/4.0",
  "CGPA: 8.75/10",
  "San Francisco, CA 94105",
  "Zip: 94105-1234",
  "Bengaluru 560001",
  "10115 Berlin",
  "Improved throughput by 35%",
  "99.9% uptime across 12 services",
  "5+ years of experience",
  "2 years 6 months",
  "6-12 months",
  "ISO 27001 and SOC 2",
  "Served 1.2M users",
  "Reduced p99 latency from 850ms to 120ms",
  "Employee ID: 20191234",
  "Phone screen on 2021-05-12",
  "Phone interview: 12/05/2021",
  "Mobile development 2019 - 2023",
  "Work: 2015-2019",
  "Ph.D. 2015 - 2019",
  "Home office since 2020",
  "Deployed on 10.100.20.30",
  "Worked at example.com for 3 years",
  "Contributed to github.com",
  "See https://docs.python.org/3.11/library/re.html",
  "@janedoe on Twitter",
  '{"match_score": 0.72, "reasoning": "5 of 6 must-haves"}',
];

describe("redaction corpus: resume contact lines", () => {
  it("holds enough lines to mean something", () => {
    expect(MASKED.length).toBeGreaterThanOrEqual(40);
    expect(UNCHANGED.length).toBeGreaterThanOrEqual(25);
  });

  it.each(MASKED)("masks %s", (input, expected) => {
    expect(redactText(input)).toBe(expected);
  });

  it.each(UNCHANGED)("leaves %s alone", (input) => {
    expect(redactText(input)).toBe(input);
  });

  it("masks every line of a whole resume header at once, leaving no digit run of a phone number", () => {
    const header = MASKED.map(([input]) => input).join("\n");
    const expected = MASKED.map(([, output]) => output).join("\n");
    expect(redactText(header)).toBe(expected);
  });

  it("redacts metadata keys too, keeping keys that collide apart", () => {
    expect(
      redactValue({ "jane@example.com": "lead", "bob@example.org": "backup", "+1 415 555 0142": true, role: "SRE" }),
    ).toEqual({ "[EMAIL]": "lead", "[EMAIL]#2": "backup", "[PHONE]": true, role: "SRE" });
  });
});
