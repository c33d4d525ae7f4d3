/**
 * Masks personal contact data (resumes are personal data): e-mail addresses become [EMAIL] and phone numbers
 * [PHONE]. Phone numbers are runs of 7 to 15 digits in the usual groupings ("+44 20 7946 0958",
 * "(312) 555-0199", "415.555.0142"); dates, year ranges, scores and plain amounts are left alone.
 */
export const EMAIL_MASK = "[EMAIL]";
export const PHONE_MASK = "[PHONE]";

const EMAIL = /[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}/g;
// A candidate: optional +country code, optional (area), then digit groups joined by a space, dot or hyphen.
const PHONE_CANDIDATE = /(?<![\w.+-])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,5}\)[ .-]?)?\d{2,12}(?:[ .-]\d{2,10}){0,4}(?![\w-]|\.\d)/g;

export function redactText(text: string): string {
  return text.replace(EMAIL, EMAIL_MASK).replace(PHONE_CANDIDATE, (match) => (looksLikePhone(match) ? PHONE_MASK : match));
}

function looksLikePhone(candidate: string): boolean {
  const digits = candidate.replace(/\D/g, "");
  if (digits.length < 7 || digits.length > 15) return false;
  const international = candidate.startsWith("+");
  const area = candidate.includes("(");
  const groups = candidate.split(/[ .-]/).filter((group) => group !== "");
  // Dates and year ranges: 2019-01-15, 2019 - 2023, 2019-2023, 01.02.2020.
  if (!international && !area) {
    if (/^\d{4}[-.]\d{1,2}[-.]\d{1,2}$/.test(candidate) || /^\d{1,2}[-.]\d{1,2}[-.]\d{4}$/.test(candidate)) return false;
    if (groups.every((group) => /^(19|20)\d{2}$/.test(group))) return false;
    // A bare run of digits without separators is an amount or an id, not a phone number.
    if (groups.length === 1) return false;
  }
  return true;
}

/** Redacts every string inside a JSON value (objects, arrays, nested), keys untouched. */
export function redactValue<T>(value: T): T {
  if (typeof value === "string") return redactText(value) as T;
  if (Array.isArray(value)) return value.map((item) => redactValue(item)) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) out[key] = redactValue(item);
    return out as T;
  }
  return value;
}
