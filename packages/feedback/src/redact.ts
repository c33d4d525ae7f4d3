import { findPhoneNumbersInText } from "libphonenumber-js";

/**
 * Masks personal contact data (resumes are personal data): e-mail addresses become [EMAIL], phone numbers
 * [PHONE] and links to a person's profile (LinkedIn, GitHub, …) [PROFILE]. Redaction leans toward masking:
 * a number that might be a phone number is masked unless its shape says it is something else (a date, a
 * year range, a version, an IP address, a ZIP+4 code, an amount with its currency). README.md ("Redaction")
 * lists what is and is not caught; redact-corpus.test.ts holds the lines it is held to.
 *
 * Phone numbers are found in three passes, each on what the one before left:
 * 1. libphonenumber-js (Google's libphonenumber metadata) finds international numbers written with their
 *    +country code, in any of the national groupings, with extensions ("+44 (0)20 7946 0958 ext. 12").
 *    Without a default country it cannot tell a national number from any other run of digits, so:
 * 2. a number after a label (Mobile, Ph, Tel, M:, Office, Fax, WhatsApp, Contact, …) is masked whatever its
 *    shape, separators and "/"-joined alternatives included ("Office: 1239345/7890906", "Tel: 4274416");
 * 3. unlabelled, digit groups joined by spaces, dots or hyphens (spaced ones too: "688 - 754 - 1489") with
 *    7 to 15 digits, an (area) code or a leading +/00, and bare runs of 10 to 15 digits, are masked.
 */
export const EMAIL_MASK = "[EMAIL]";
export const PHONE_MASK = "[PHONE]";
export const PROFILE_MASK = "[PROFILE]";

// Letters and digits of any script (jöhn.doe@exämple.de, müller@firma.de).
const WORD = String.raw`\p{L}\p{M}\p{N}`;
const LOCAL_PART = String.raw`(?:"[^"\n@]{1,64}"|[${WORD}_%+-](?:[${WORD}._%+'-]*[${WORD}_%+-])?)`;
const DOMAIN = String.raw`(?:[${WORD}](?:[${WORD}-]*[${WORD}])?\.)+\p{L}[\p{L}\p{M}]+`;
// The lookbehind starts a match only at the start of a word, so a long run of letters costs linear time.
const EMAIL = new RegExp(String.raw`(?<![${WORD}._%+-])${LOCAL_PART}[ \t]?@[ \t]?${DOMAIN}(?![${WORD}])`, "gu");
// Written backwards ("moc.liamtoh@eod.nhoj"): a reversed top-level domain and domain, "@", the local part.
const REVERSED_EMAIL = new RegExp(
  String.raw`(?<![${WORD}._%+-])\p{L}[\p{L}\p{M}]+\.(?:[${WORD}-]+\.)*[${WORD}-]+@[${WORD}._%+-]*[${WORD}_%+-]`,
  "gu",
);
// Spelt out: "jane [at] example [dot] com", "jane(at)example(dot)com", "jane at example dot com".
const SPELT_AT = String.raw`[ \t]*(?:[\[({<][ \t]*at[ \t]*[\])}>])[ \t]*|[ \t]+at[ \t]+`;
const SPELT_DOT = String.raw`[ \t]*[\[({<][ \t]*dot[ \t]*[\])}>][ \t]*|[ \t]+dot[ \t]+|\.`;
const SPELT_EMAIL = new RegExp(
  String.raw`(?<![${WORD}._%+-])[${WORD}_%+-](?:[${WORD}._%+-]*[${WORD}_%+-])?(?:${SPELT_AT})[${WORD}-]+(?:(?:${SPELT_DOT})[${WORD}-]+)+`,
  "giu",
);

// Profile links name the person. A link's path ends before whitespace, quotes, brackets and final punctuation.
const URL_TAIL = String.raw`(?:[^\s<>"'()\[\]{}|]*[^\s<>"'()\[\]{}|.,;:!?])?`;
const PROFILE_SITES = String.raw`linkedin\.com|github\.com|gitlab\.com|bitbucket\.org|twitter\.com|x\.com|facebook\.com|instagram\.com|medium\.com|stackoverflow\.com|behance\.net|dribbble\.com|kaggle\.com|leetcode\.com`;
const PROFILE_URL = new RegExp(
  String.raw`(?<![${WORD}.@/-])(?:https?://)?(?:(?:[${WORD}-]+\.)*(?:${PROFILE_SITES})/[^\s<>"'()\[\]{}|/]${URL_TAIL}|[${WORD}-]+\.github\.io(?![${WORD}-])${URL_TAIL})`,
  "giu",
);
// Any other link: left as it is, and the digits in it are never taken for a phone number.
const URL = new RegExp(
  String.raw`(?:https?://|www\.)[^\s<>"']+|(?<![${WORD}.@-])(?:[${WORD}-]+\.)+\p{L}{2,}/[^\s<>"']*`,
  "giu",
);

// A number after a label. Single-letter labels (M:, T:) need their colon.
const PHONE_LABEL = String.raw`(?:tel(?:ephone)?|phone|ph|mob(?:ile)?|cell(?:phone)?|fax|whats[ \t]?app|hp|handphone|landline|office|home|work|direct|contact)\.?(?:[ \t]*(?:no|num|number|#)\.?)?[ \t]*(?:[:#]|-(?![ \t]*\d))?[ \t]*|[mtpcho][ \t]*:[ \t]*`;
const LABELLED_VALUE = String.raw`(?:\(?\+|\()?\d(?:[\d \t().\/–-]*\d)?\)?`;
const LABELLED_PHONE = new RegExp(String.raw`(?<![${WORD}_])(${PHONE_LABEL})(${LABELLED_VALUE})(?![${WORD}])`, "giu");

// Unlabelled: digit groups joined by a separator (spaces around a hyphen allowed), or by an (area) code.
const SEP = String.raw`(?:[ \t\u00a0]*[-–][ \t\u00a0]*|[. \t\u00a0])`;
const PHONE_CANDIDATE = new RegExp(
  String.raw`(?<![${WORD}_.+/$€£¥₹-])(?:\+?\d+|\(\+?\d{1,5}\))(?:${SEP}?\(\d{1,5}\)|(?<=\))${SEP}?\d+|${SEP}\d+){0,7}(?![${WORD}_/%-]|[.:]\d|,\d{3}(?!\d))`,
  "gu",
);

const CURRENCY_BEFORE = /(?:[$€£¥₹]|\b(?:USD|EUR|GBP|INR|Rs\.?))\s*$/i;
const CURRENCY_AFTER = /^\s*(?:[$€£¥₹]|(?:USD|EUR|GBP|INR|CHF|k|K|M|million|lakhs?|crores?)\b)/;

export function redactText(text: string): string {
  let out = text.replace(PROFILE_URL, PROFILE_MASK);
  out = out.replace(EMAIL, EMAIL_MASK).replace(REVERSED_EMAIL, EMAIL_MASK).replace(SPELT_EMAIL, maskSpeltEmail);
  return outsideLinks(out, redactPhones);
}

function maskSpeltEmail(match: string): string {
  // " at " and "." alone are ordinary prose ("worked at example.com"): a spelt-out address needs a bracketed
  // [at] or a spelt-out dot, and ends in a top-level domain of letters.
  const bracketed = /[[({<][ \t]*at[ \t]*[\])}>]/i.test(match);
  const speltDot = /(?:^|[\s[({<])dot(?:$|[\s\])}>])/i.test(match);
  const tld = /\p{L}{2,}$/u.test(match);
  return tld && (bracketed || speltDot) ? EMAIL_MASK : match;
}

/** Applies `fn` to the text between links, leaving the links as they are. */
function outsideLinks(text: string, fn: (segment: string) => string): string {
  let out = "";
  let last = 0;
  for (const match of text.matchAll(URL)) {
    out += fn(text.slice(last, match.index)) + match[0];
    last = match.index + match[0].length;
  }
  return out + fn(text.slice(last));
}

function redactPhones(text: string): string {
  if (!/\d{2}/.test(text)) return text;
  // 1. International numbers, as libphonenumber reads them.
  let out = "";
  let last = 0;
  for (const found of internationalNumbers(text)) {
    out += text.slice(last, found.start) + PHONE_MASK;
    last = found.end;
  }
  out += text.slice(last);
  // 2. Labelled numbers.
  out = out.replace(LABELLED_PHONE, (match, label: string, value: string) => {
    const digits = value.replace(/\D/g, "").length;
    const minimum = /^[a-z][ \t]*:/i.test(label) ? 7 : 6;
    if (digits < minimum || digits > 30 || isNotAPhoneNumber(value)) return match;
    return label + PHONE_MASK;
  });
  // 3. Shapes of phone numbers.
  return out.replace(PHONE_CANDIDATE, (match, offset: number, whole: string) =>
    looksLikePhone(match, whole.slice(0, offset), whole.slice(offset + match.length)) ? PHONE_MASK : match,
  );
}

// An international number and what may follow it: "+", or "(+" as in "(+49) 30 901820", digits and their
// separators, and an extension ("ext. 12", "x123").
const INTERNATIONAL_RUN = /\(?\+[ \t]?\d[\d \t()./–-]{0,32}\d(?:[ \t,]*(?:ext\.?|extension|x|#)[ \t]*\d{1,6})?/giu;

/**
 * The international numbers libphonenumber finds in `text`. Without a default country it finds only numbers
 * written with their +country code, and its scanner costs about a millisecond per call on a line of prose, so
 * it reads only the runs of digits that start with "+": a long response costs what its phone numbers cost.
 */
function internationalNumbers(text: string): Array<{ start: number; end: number }> {
  const spans: Array<{ start: number; end: number }> = [];
  for (const match of text.matchAll(INTERNATIONAL_RUN)) {
    for (const found of findInRun(match[0])) spans.push({ start: match.index + found.start, end: match.index + found.end });
  }
  return spans;
}

// The same resume recurs in many interactions of a store: runs already read are remembered (a bounded memo).
const runMemo = new Map<string, ReadonlyArray<{ start: number; end: number }>>();

function findInRun(run: string): ReadonlyArray<{ start: number; end: number }> {
  let found = runMemo.get(run);
  if (found === undefined) {
    found = findPhoneNumbersInText(run).map((number) => ({ start: number.startsAt, end: number.endsAt }));
    if (runMemo.size >= 10_000) runMemo.clear();
    runMemo.set(run, found);
  }
  return found;
}

function looksLikePhone(candidate: string, before: string, after: string): boolean {
  const digits = candidate.replace(/\D/g, "");
  if (digits.length < 7 || digits.length > 15) return false;
  if (/^(?:\+|\(\+|00)/.test(candidate) || candidate.includes("(")) return true;
  if (isNotAPhoneNumber(candidate)) return false;
  const groups = candidate.split(/[^\d]+/).filter((group) => group !== "");
  // A bare run of digits is a phone number only when it is as long as one (10 to 15 digits); shorter ones
  // are amounts and ids.
  if (groups.length === 1) return digits.length >= 10;
  // Thousands grouping next to a currency: an amount ("1 250 000 EUR").
  if (/^\d{1,3}$/.test(groups[0]!) && groups.slice(1).every((group) => group.length === 3)) {
    if (CURRENCY_BEFORE.test(before) || CURRENCY_AFTER.test(after)) return false;
  }
  return true;
}

/** Shapes that are not phone numbers although they are runs of digit groups. */
function isNotAPhoneNumber(value: string): boolean {
  const compact = value.replace(/[ \t\u00a0]*([-–./])[ \t\u00a0]*/g, "$1").trim();
  const groups = compact.split(/[^\d]+/).filter((group) => group !== "");
  // Years and year ranges: 2019-2023, 2019 - 2023.
  if (groups.every((group) => /^(?:19|20)\d{2}$/.test(group))) return true;
  // Dates: 2019-01-15, 15.01.2020, 12/05/2021, 2021/05/12.
  if (/^\d{4}[-–./]\d{1,2}[-–./]\d{1,2}$/.test(compact) || /^\d{1,2}[-–./]\d{1,2}[-–./](?:\d{2}|\d{4})$/.test(compact)) return true;
  // Month/year ranges: 05/2019-03/2023.
  if (/^\d{1,2}[/.](?:19|20)\d{2}(?:[-–]\d{1,2}[/.](?:19|20)\d{2})?$/.test(compact)) return true;
  // IPv4 addresses: 10.100.20.30.
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(compact) && groups.every((group) => Number(group) <= 255)) return true;
  // US ZIP+4 codes: 94105-1234.
  if (/^\d{5}-\d{4}$/.test(compact)) return true;
  return false;
}

/**
 * Redacts every string inside a JSON value (objects, arrays, nested), object keys included (metadata keyed by
 * an e-mail address). Keys that become equal after masking are kept apart with a suffix: "[EMAIL]",
 * "[EMAIL]#2", …
 */
export function redactValue<T>(value: T): T {
  if (typeof value === "string") return redactText(value) as T;
  if (Array.isArray(value)) return value.map((item) => redactValue(item)) as T;
  if (value !== null && typeof value === "object") {
    const out: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const masked = redactText(key);
      let unique = masked;
      for (let n = 2; Object.hasOwn(out, unique); n += 1) unique = `${masked}#${n}`;
      // defineProperty: a plain assignment to "__proto__" would set the prototype and drop the key.
      Object.defineProperty(out, unique, { value: redactValue(item), enumerable: true, writable: true, configurable: true });
    }
    return out as T;
  }
  return value;
}
