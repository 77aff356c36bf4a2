/**
 * Conditional requests (RFC 9110 §13): entity-tag parsing and comparison, and the precondition
 * evaluation order of §13.2.2. Pure: the caller passes the request headers and the validators of
 * the selected representation and gets back what to do; Range is evaluated afterwards (range.ts).
 */
import { type HeaderGetter, parseHttpDate } from './headers.js';

/** Validators of the selected representation (RFC 9110 §8.8). */
export interface Validators {
  /** The full entity-tag as sent in `ETag`, quotes included: `"abc"` or `W/"abc"`. */
  etag?: string;
  /** Last-Modified as ms since the epoch; compared at one-second granularity (§8.8.2). */
  lastModified?: number;
  /**
   * When the representation was sent (its Date, ms since the epoch); default: now. If-Range
   * trusts Last-Modified only when it is at least a second older than this (§8.8.2.2): within the
   * same second the representation may have changed again.
   */
  date?: number;
}

export type ConditionalOutcome = 'proceed' | 'not-modified' | 'precondition-failed';

/** A parsed entity-tag (RFC 9110 §8.8.3). */
interface EntityTag {
  weak: boolean;
  /** The opaque-tag including its double quotes. */
  opaque: string;
}

// RFC 9110 §8.8.3: etagc = %x21 / %x23-7E / obs-text
function isEtagc(code: number): boolean {
  return code === 0x21 || (code >= 0x23 && code <= 0x7e) || (code >= 0x80 && code <= 0xff);
}

function isOws(ch: string | undefined): boolean {
  return ch === ' ' || ch === '\t';
}

/**
 * Reads one entity-tag starting at `pos`; returns it and the index after it, or undefined when
 * the text there is not an entity-tag.
 */
function readEntityTag(s: string, pos: number): { tag: EntityTag; next: number } | undefined {
  let i = pos;
  const weak = s.startsWith('W/', i); // RFC 9110 §8.8.3: weak = %s"W/" (case-sensitive)
  if (weak) i += 2;
  if (s[i] !== '"') return undefined;
  const open = i;
  i += 1;
  while (i < s.length && s[i] !== '"') {
    if (!isEtagc(s.charCodeAt(i))) return undefined;
    i += 1;
  }
  if (i >= s.length) return undefined;
  return { tag: { weak, opaque: s.slice(open, i + 1) }, next: i + 1 };
}

function parseOne(value: string): EntityTag | undefined {
  const trimmed = value.trim();
  const read = readEntityTag(trimmed, 0);
  return read && read.next === trimmed.length ? read.tag : undefined;
}

function format(tag: EntityTag): string {
  return tag.weak ? `W/${tag.opaque}` : tag.opaque;
}

/**
 * Parses the value of If-Match / If-None-Match (RFC 9110 §13.1.1, §13.1.2):
 * `"*"` or a comma-separated list of entity-tags. Commas inside an opaque-tag are kept (they are
 * legal etagc); members that are not entity-tags are dropped, so they never match; empty list
 * elements are ignored (§5.6.1). Returns the tags as written (`W/"x"` or `"x"`).
 */
export function parseEntityTags(list: string): string[] | '*' {
  if (list.trim() === '*') return '*';
  const tags: string[] = [];
  let i = 0;
  while (i < list.length) {
    while (i < list.length && (isOws(list[i]) || list[i] === ',')) i += 1;
    if (i >= list.length) break;
    const read = readEntityTag(list, i);
    let j = read ? read.next : i;
    while (j < list.length && isOws(list[j])) j += 1;
    if (read && (j >= list.length || list[j] === ',')) {
      tags.push(format(read.tag));
      i = j;
      continue;
    }
    // Not an entity-tag: skip this member up to the next comma outside quotes.
    let quoted = false;
    while (j < list.length && (quoted || list[j] !== ',')) {
      if (list[j] === '"') quoted = !quoted;
      j += 1;
    }
    i = j;
  }
  return tags;
}

/** Strong comparison (RFC 9110 §8.8.3.2): both strong and opaque-tags identical. */
export function strongMatch(a: string, b: string): boolean {
  const x = parseOne(a);
  const y = parseOne(b);
  return x !== undefined && y !== undefined && !x.weak && !y.weak && x.opaque === y.opaque;
}

/** Weak comparison (RFC 9110 §8.8.3.2): opaque-tags identical, weakness ignored. */
export function weakMatch(a: string, b: string): boolean {
  const x = parseOne(a);
  const y = parseOne(b);
  return x !== undefined && y !== undefined && x.opaque === y.opaque;
}

/** Seconds since the epoch: HTTP-dates have one-second resolution (RFC 9110 §5.6.7). */
function toSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

function present(value: string | null | undefined): value is string {
  return value !== null && value !== undefined;
}

// RFC 9110 §13.2.1: methods that neither select nor modify a representation ignore preconditions.
const IGNORING_METHODS = new Set(['CONNECT', 'OPTIONS', 'TRACE']);

/**
 * Evaluates the preconditions of a request in the order of RFC 9110 §13.2.2.
 *
 * @param method Request method, case-sensitive as methods are (RFC 9110 §9.1).
 * @param v Validators of the current representation, or `null` when the target resource has no
 *   current representation (then `If-Match: *` fails and `If-None-Match: *` passes, which is what
 *   a create-only `PUT` relies on).
 *
 * The caller applies this only when the response without preconditions would be 2xx or 412
 * (§13.2.1); Range is evaluated afterwards (§13.2.2 step 5, see range.ts).
 */
export function evaluateConditional(method: string, req: HeaderGetter, v: Validators | null): ConditionalOutcome {
  if (IGNORING_METHODS.has(method)) return 'proceed';
  const getOrHead = method === 'GET' || method === 'HEAD';

  const ifMatch = req.get('if-match');
  if (present(ifMatch)) {
    // Step 1, §13.1.1: true for "*" if a current representation exists, else strong comparison.
    if (!ifMatchPasses(ifMatch, v)) return 'precondition-failed';
  } else {
    // Step 2, §13.1.4: only without If-Match; ignored if invalid or there is no modification date.
    const ius = parseHttpDate(req.get('if-unmodified-since'));
    if (ius !== undefined && v?.lastModified !== undefined) {
      if (toSeconds(v.lastModified) > toSeconds(ius)) return 'precondition-failed';
    }
  }

  const ifNoneMatch = req.get('if-none-match');
  if (present(ifNoneMatch)) {
    // Step 3, §13.1.2: false for "*" if a representation exists, else false on a weak match.
    if (!ifNoneMatchPasses(ifNoneMatch, v)) return getOrHead ? 'not-modified' : 'precondition-failed';
  } else if (getOrHead) {
    // Step 4, §13.1.3: only GET/HEAD and only without If-None-Match; ignored if the value is not
    // one valid HTTP-date or there is no modification date. A date later than Last-Modified
    // (even one in the future) means "not modified since": RFC 9110 compares only the two dates.
    const ims = parseHttpDate(req.get('if-modified-since'));
    if (ims !== undefined && v?.lastModified !== undefined) {
      if (toSeconds(v.lastModified) <= toSeconds(ims)) return 'not-modified';
    }
  }
  return 'proceed';
}

function ifMatchPasses(value: string, v: Validators | null): boolean {
  const tags = parseEntityTags(value);
  if (tags === '*') return v !== null;
  const current = v?.etag;
  return current !== undefined && tags.some((t) => strongMatch(t, current));
}

/** RFC 9110 §13.1.2: whether an If-None-Match field lets the request proceed (false: 304 for GET/HEAD). */
export function ifNoneMatchPasses(value: string, v: Validators | null): boolean {
  const tags = parseEntityTags(value);
  if (tags === '*') return v === null;
  const current = v?.etag;
  return current === undefined || !tags.some((t) => weakMatch(t, current));
}
