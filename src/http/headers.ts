/**
 * Header access and HTTP-date handling shared by every HTTP-semantics module.
 *
 * `HeaderGetter` is the one read-only view the pure decision functions take, so they accept a
 * WHATWG `Headers`, a Node `IncomingHttpHeaders` record or a plain test object alike.
 * `httpDate` / `parseHttpDate` implement the HTTP-date grammar of RFC 9110 §5.6.7.
 */
import { CdnError } from '../errors.js';

/** Read-only, case-insensitive header lookup; absent fields are `null` or `undefined`. */
export type HeaderGetter = { get(name: string): string | null | undefined };

/** A header record as Node (`IncomingHttpHeaders`) or a test builds it. */
export type HeaderRecord = Record<string, string | string[] | undefined>;

/**
 * Wraps `Headers` (already case-insensitive) or a record. For records, names are compared
 * case-insensitively and repeated fields (arrays, or keys differing only in case) are combined
 * with ", " as RFC 9110 §5.3 allows for list-based fields.
 */
export function headerGetter(h: Headers | HeaderRecord): HeaderGetter {
  if (typeof (h as Headers).get === 'function' && typeof (h as Headers).has === 'function') {
    const headers = h as Headers;
    return { get: (name) => headers.get(name) };
  }
  const record = h as HeaderRecord;
  return {
    get(name) {
      const wanted = name.toLowerCase();
      const parts: string[] = [];
      for (const [key, value] of Object.entries(record)) {
        if (key.toLowerCase() !== wanted || value === undefined) continue;
        if (Array.isArray(value)) parts.push(...value);
        else parts.push(value);
      }
      return parts.length === 0 ? undefined : parts.join(', ');
    },
  };
}

const DAY_NAMES = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const DAY_NAMES_LONG = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * Formats an instant (ms since the epoch) as an IMF-fixdate, the only form a sender may generate
 * (RFC 9110 §5.6.7), e.g. `Thu, 01 Jan 2026 00:00:00 GMT`. Sub-second precision is truncated.
 * Throws a CdnError (internal) for a non-finite instant or a year outside 0000–9999.
 */
export function httpDate(ms: number): string {
  const d = new Date(Math.floor(ms / 1000) * 1000);
  const year = d.getUTCFullYear();
  if (!Number.isFinite(ms) || Number.isNaN(d.getTime()) || year < 0 || year > 9999) {
    throw new CdnError('invalid_http_date', 'internal', `cannot format ${ms} as an HTTP-date`);
  }
  // RFC 9110 §5.6.7: IMF-fixdate = day-name "," SP date1 SP time-of-day SP GMT
  return (
    `${DAY_NAMES[d.getUTCDay()]}, ${pad2(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ` +
    `${String(year).padStart(4, '0')} ${pad2(d.getUTCHours())}:${pad2(d.getUTCMinutes())}:` +
    `${pad2(d.getUTCSeconds())} GMT`
  );
}

// RFC 9110 §5.6.7 grammars. HTTP-date is case-sensitive; no extra whitespace is allowed inside.
const IMF_FIXDATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) ([A-Z][a-z]{2}) (\d{4}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
const RFC850_DATE = /^([A-Z][a-z]+), (\d{2})-([A-Z][a-z]{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2}) GMT$/;
/** Parsed IMF-fixdates (the only form whose meaning does not depend on the clock), bounded. */
const IMF_MEMO = new Map<string, number | undefined>();
const ASCTIME_DATE = /^(Mon|Tue|Wed|Thu|Fri|Sat|Sun) ([A-Z][a-z]{2}) ( \d|\d{2}) (\d{2}):(\d{2}):(\d{2}) (\d{4})$/;

/**
 * Parses an HTTP-date in any of the three forms a recipient must accept (RFC 9110 §5.6.7):
 * IMF-fixdate, the obsolete RFC 850 form and C's asctime() form. Returns ms since the epoch, or
 * `undefined` for anything else (including impossible dates such as 31 Feb), so callers can apply
 * the field's own rule for invalid dates.
 *
 * @param nowMs Optional clock for the RFC 850 two-digit year: RFC 9110 §5.6.7 says a year that
 *   appears more than 50 years in the future is the most recent past year with the same last two
 *   digits. Without a clock, 70–99 map to 19xx and 00–69 to 20xx (the POSIX `%y` pivot).
 */
export function parseHttpDate(s: string | null | undefined, nowMs?: number): number | undefined {
  if (s === null || s === undefined) return undefined;
  // Leading/trailing OWS is not part of a field value (RFC 9110 §5.5).
  const value = s.trim();
  // The same Date / Last-Modified strings come with every hit of an object: parse each once.
  if (IMF_MEMO.has(value)) return IMF_MEMO.get(value);
  let m = IMF_FIXDATE.exec(value);
  if (m) {
    const ms = build(Number(m[4]), m[3]!, Number(m[2]), m[5]!, m[6]!, m[7]!);
    if (IMF_MEMO.size >= 4096) IMF_MEMO.clear();
    IMF_MEMO.set(value, ms);
    return ms;
  }
  m = RFC850_DATE.exec(value);
  if (m) {
    if (!DAY_NAMES_LONG.includes(m[1]!)) return undefined;
    return build(fullYear(Number(m[4]), nowMs), m[3]!, Number(m[2]), m[5]!, m[6]!, m[7]!);
  }
  m = ASCTIME_DATE.exec(value);
  if (m) return build(Number(m[7]), m[2]!, Number(m[3]!.trim()), m[4]!, m[5]!, m[6]!);
  return undefined;
}

function fullYear(twoDigit: number, nowMs: number | undefined): number {
  if (nowMs === undefined || !Number.isFinite(nowMs)) {
    return twoDigit >= 70 ? 1900 + twoDigit : 2000 + twoDigit;
  }
  // RFC 9110 §5.6.7: more than 50 years in the future → the most recent past year with those digits.
  const nowYear = new Date(nowMs).getUTCFullYear();
  const century = nowYear - (nowYear % 100);
  let year = century + twoDigit;
  if (year > nowYear + 50) year -= 100;
  else if (year <= nowYear - 50) year += 100;
  return year;
}

function build(year: number, monthName: string, day: number, hh: string, mm: string, ss: string): number | undefined {
  const month = MONTHS.indexOf(monthName);
  const hour = Number(hh);
  const minute = Number(mm);
  // RFC 9110 §5.6.7: second is 00-60 (a leap second); 60 folds into the next minute.
  const second = Number(ss);
  if (month < 0 || hour > 23 || minute > 59 || second > 60 || day < 1) return undefined;
  // setUTCFullYear, unlike Date.UTC, does not map years 0–99 to 1900–1999.
  const d = new Date(0);
  d.setUTCFullYear(year, month, day);
  // Reject day overflow (e.g. 31 Feb) instead of letting Date roll it into the next month.
  if (d.getUTCMonth() !== month || d.getUTCDate() !== day) return undefined;
  d.setUTCHours(hour, minute, second, 0);
  return d.getTime();
}
