import { describe, expect, it } from "vitest";
import { redactText, redactValue } from "./redact.js";

describe("redactText", () => {
  it.each([
    ["Contact: jane.doe+ats@example.com", "Contact: [EMAIL]"],
    ["mail A.B@sub.example.co.uk now", "mail [EMAIL] now"],
    ["+1 415 555 0142", "[PHONE]"],
    ["call (312) 555-0199 today", "call [PHONE] today"],
    ["+44 20 7946 0958 | London", "[PHONE] | London"],
    ["415.555.0142", "[PHONE]"],
    ["+49 30 901820", "[PHONE]"],
    ["Tel: 020 7946 0958", "Tel: [PHONE]"],
    ["+919876543210", "[PHONE]"],
  ])("masks %s", (input, expected) => {
    expect(redactText(input)).toBe(expected);
  });

  it.each([
    "Jan 2019 – Present",
    "2015-2019",
    "2015 - 2019",
    "2019-01-15",
    "15.01.2020",
    "Managed a budget of 1250000 EUR",
    '{"match_score": 0.72}',
    "Reduced latency by 35% across 12 services in 2021",
    "ISO 27001 and SOC 2",
    "version 1.2.3",
  ])("leaves %s alone", (input) => {
    expect(redactText(input)).toBe(input);
  });

  it("redacts every string in nested values, and object keys (metadata keyed by an e-mail address)", () => {
    const value = {
      query: "Parse ana@example.org",
      context: ["Phone +1 415 555 0142"],
      metadata: { "contact@example.com": "x", nested: ["(312) 555-0199"] },
      rating: 3,
      ideal_response: null,
    };
    expect(redactValue(value)).toEqual({
      query: "Parse [EMAIL]",
      context: ["Phone [PHONE]"],
      metadata: { "[EMAIL]": "x", nested: ["[PHONE]"] },
      rating: 3,
      ideal_response: null,
    });
  });

  it("keeps a \"__proto__\" key as an ordinary key", () => {
    const value = JSON.parse('{"__proto__": {"note": "call 4155550142"}, "a": 1}') as Record<string, unknown>;
    expect(JSON.stringify(redactValue(value))).toBe('{"__proto__":{"note":"call [PHONE]"},"a":1}');
  });
});
