/**
 * One access-log line per request, as pure functions of what happened: JSON (one object per line,
 * ASCII only) or the combined format of nginx and Apache with the cache outcome appended, which
 * GoAccess, AWStats and most log tools read as they are.
 *
 * Client-sent text (target, Host, User-Agent, Referer) is escaped so that a line is always one
 * line and one record: in JSON with JSON's escapes (`\"`, `\\`, `\u00XX` for control characters
 * and for every byte past ASCII, which Node hands over as one latin1 character each), in combined
 * format as nginx does (`"` → `\x22`, `\` → `\x5C`, control and non-ASCII bytes → `\xHH`).
 *
 * Cheap by construction: a line is one string built by concatenation, timestamps are formatted
 * once per second, and a field without anything to escape is copied as it is.
 */

/** What the access log records about one request. */
export interface AccessRecord {
  /** Wall-clock time the request arrived, in ms since the epoch. */
  time: number;
  /** The client's address (an IPv4-mapped IPv6 address is written as IPv4) and port. */
  clientAddress: string | undefined;
  clientPort: number | undefined;
  method: string;
  /** The Host field as sent; undefined without one. */
  host: string | undefined;
  /** The request target as sent (`/path?query`). */
  target: string;
  /** `HTTP/1.1`, `HTTP/1.0`. */
  protocol: string;
  status: number;
  /** Body bytes sent. */
  bytes: number;
  /** From the request's arrival to the last byte handed to the connection. */
  durationMs: number;
  /** From the request's arrival to the response head handed to the connection. */
  ttfbMs: number;
  /** The outcome word (edge: hit, miss, stale, …; origin: original, variant-generated, …). */
  outcome: string;
  /** When this request made the server ask upstream: its answer's status and the time to its head. */
  upstreamStatus?: number | undefined;
  upstreamMs?: number | undefined;
  userAgent: string | undefined;
  referer: string | undefined;
  /** Where the time went, when the server knows (the origin: a new variant's queueMs and transformMs). */
  phases?: Readonly<Record<string, number>> | undefined;
}

export type AccessLogFormat = 'json' | 'combined';

/** Formats records as lines (each ending in `\n`); `fields` go on every JSON line after `time` (e.g. pop and node). */
export function lineFormatter(format: AccessLogFormat, fields: Readonly<Record<string, string>> = {}): (r: AccessRecord) => string {
  if (format === 'combined') return combinedLine;
  let constant = '';
  for (const [name, value] of Object.entries(fields)) constant += `,${jsonString(name)}:${jsonString(value)}`;
  return (r) => jsonLine(r, constant);
}

// ---------------------------------------------------------------- JSON

/** Visible ASCII except `"` and `\`, and space: copied as they are. */
const JSON_PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** JSON's two-character escapes (RFC 8259 §7), as JSON.stringify writes them. */
const SHORT_ESCAPES: Record<number, string> = { 0x08: '\\b', 0x09: '\\t', 0x0a: '\\n', 0x0c: '\\f', 0x0d: '\\r', 0x22: '\\"', 0x5c: '\\\\' };

/** A JSON string literal of `s`, ASCII only: JSON.stringify's for ASCII text, `\u00XX` past it. */
export function jsonString(s: string): string {
  if (JSON_PLAIN.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const short = SHORT_ESCAPES[c];
    if (short !== undefined) out += short;
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return out + '"';
}

/**
 * Method (a token: Node's parser takes only the methods it knows), protocol (from the version
 * digits), client address (from the socket) and outcome (the server's own word) hold nothing to
 * escape: they are copied as they are. Everything the client wrote is escaped.
 */
function jsonLine(r: AccessRecord, constant: string): string {
  let line = `{"time":"${isoTime(r.time)}"${constant}`;
  if (r.clientAddress !== undefined) line += `,"client":"${clientAddress(r.clientAddress)}"`;
  if (r.clientPort !== undefined) line += `,"clientPort":${r.clientPort}`;
  line += `,"method":"${r.method}"`;
  if (r.host !== undefined) line += `,"host":${jsonString(r.host)}`;
  line += `,"target":${jsonString(r.target)},"protocol":"${r.protocol}","status":${r.status},"bytes":${r.bytes},"durationMs":${millis(r.durationMs)},"ttfbMs":${millis(r.ttfbMs)},"outcome":"${r.outcome}"`;
  if (r.upstreamStatus !== undefined) line += `,"upstreamStatus":${r.upstreamStatus}`;
  if (r.upstreamMs !== undefined) line += `,"upstreamMs":${millis(r.upstreamMs)}`;
  if (r.userAgent !== undefined) line += `,"userAgent":${jsonString(r.userAgent)}`;
  if (r.referer !== undefined) line += `,"referer":${jsonString(r.referer)}`;
  if (r.phases !== undefined) {
    let sep = '';
    line += ',"phases":{';
    for (const name in r.phases) {
      line += `${sep}${jsonString(name)}:${millis(r.phases[name]!)}`;
      sep = ',';
    }
    line += '}';
  }
  return line + '}\n';
}

/**
 * Milliseconds with three decimals (µs), as a JSON number: `0.042`, `14.250` (never negative,
 * never NaN). Made from two integers: formatting a double costs more than the rest of a line.
 */
export function millis(ms: number): string {
  if (!(ms > 0)) return '0.000';
  const us = Math.round(ms * 1000);
  const frac = us % 1000;
  return `${(us - frac) / 1000}.${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}`;
}

let isoSecond = -1;
let isoPrefix = '';

/** `2026-12-05T01:29:00.123Z`: the part up to the seconds made once per second. */
export function isoTime(ms: number): string {
  const t = Math.floor(ms);
  const second = Math.floor(t / 1000);
  if (second !== isoSecond) {
    isoSecond = second;
    isoPrefix = new Date(second * 1000).toISOString().slice(0, 20);
  }
  const frac = t - second * 1000;
  return `${isoPrefix}${frac < 10 ? '00' : frac < 100 ? '0' : ''}${frac}Z`;
}

function clientAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}

// ---------------------------------------------------------------- combined

/** Visible ASCII except `"` and `\`, and space: copied as they are (nginx's default escaping). */
const COMBINED_PLAIN = JSON_PLAIN;
const HEX = '0123456789ABCDEF';

/** `s` escaped as nginx escapes variables in a log line: `"` → `\x22`, `\` → `\x5C`, control and non-ASCII bytes → `\xHH`. */
export function combinedEscape(s: string): string {
  if (COMBINED_PLAIN.test(s)) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22 || c === 0x5c || c < 0x20 || (c > 0x7e && c <= 0xff)) out += `\\x${HEX[c >> 4]}${HEX[c & 15]}`;
    else if (c > 0xff) for (const b of Buffer.from(s[i]!, 'utf8')) out += `\\x${HEX[b >> 4]}${HEX[b & 15]}`;
    else out += s[i];
  }
  return out;
}

/**
 * `addr - - [05/Dec/2026:01:29:00 +0000] "GET /a.jpg HTTP/1.1" 200 1024 "referer" "user agent" hit`:
 * nginx's `combined` (times in UTC), then the outcome. An absent Referer or User-Agent is `-`.
 */
function combinedLine(r: AccessRecord): string {
  const address = r.clientAddress === undefined ? '-' : clientAddress(r.clientAddress);
  const referer = r.referer === undefined ? '-' : combinedEscape(r.referer);
  const agent = r.userAgent === undefined ? '-' : combinedEscape(r.userAgent);
  return `${address} - - [${clfTime(r.time)}] "${r.method} ${combinedEscape(r.target)} ${r.protocol}" ${r.status} ${r.bytes} "${referer}" "${agent}" ${r.outcome}\n`;
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
let clfSecond = -1;
let clfText = '';

/** `05/Dec/2026:01:29:00 +0000` (Common Log Format, UTC), made once per second. */
export function clfTime(ms: number): string {
  const second = Math.floor(ms / 1000);
  if (second !== clfSecond) {
    const d = new Date(second * 1000);
    const two = (n: number): string => (n < 10 ? `0${n}` : String(n));
    clfSecond = second;
    clfText = `${two(d.getUTCDate())}/${MONTHS[d.getUTCMonth()]}/${d.getUTCFullYear()}:${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
  }
  return clfText;
}

// ---------------------------------------------------------------- request fields

/** The Host, User-Agent and Referer fields of a request (the first of each), from Node's `rawHeaders`. */
export function loggedFields(rawHeaders: readonly string[]): { host: string | undefined; userAgent: string | undefined; referer: string | undefined } {
  let host: string | undefined;
  let userAgent: string | undefined;
  let referer: string | undefined;
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    switch (name.length) {
      case 4:
        if (host === undefined && name.toLowerCase() === 'host') host = rawHeaders[i + 1];
        break;
      case 7:
        if (referer === undefined && name.toLowerCase() === 'referer') referer = rawHeaders[i + 1];
        break;
      case 10:
        if (userAgent === undefined && name.toLowerCase() === 'user-agent') userAgent = rawHeaders[i + 1];
        break;
    }
  }
  return { host, userAgent, referer };
}
