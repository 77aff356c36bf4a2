/**
 * Byte-range requests (RFC 9110 §14) and If-Range (§13.1.5): decides whether a GET is answered
 * with the full representation (200), one part of it (206) or 416. Evaluate it only after
 * `evaluateConditional` returned 'proceed' (RFC 9110 §13.2.2 step 5).
 *
 * anycdn never sends multipart/byteranges. A request for several ranges is answered with the one
 * range they coalesce into when they overlap or touch (§15.3.7.2 allows coalescing), with 416 when
 * none is satisfiable (§14.2), and otherwise with the full representation (a server MAY ignore
 * Range, §14.2).
 */
import { type Validators, strongMatch } from './conditional.js';
import { type HeaderGetter, parseHttpDate } from './headers.js';

export type RangeDecision =
  | { type: 'full' }
  | { type: 'partial'; start: number; end: number }
  | { type: 'unsatisfiable' };

/** More range-specs than this and the header is ignored (RFC 9110 §17.15: range DoS). */
export const MAX_RANGE_SPECS = 100;

/** One byte-range-spec (RFC 9110 §14.1.2): `first-last`, `first-` or the suffix `-length`. */
export type ByteRangeSpec =
  | { kind: 'int'; first: number; last: number | undefined }
  | { kind: 'suffix'; length: number };

const FULL: RangeDecision = { type: 'full' };
const UNSATISFIABLE: RangeDecision = { type: 'unsatisfiable' };
// RFC 9110 §5.6.2: tchar
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const INT_RANGE = /^(\d+)-(\d*)$/;
const SUFFIX_RANGE = /^-(\d+)$/;

/**
 * Parses a Range value into byte-range-specs (RFC 9110 §14.1.2); `undefined` when the unit is not
 * `bytes` or the value is not syntactically valid, in which case the header is ignored.
 */
export function parseByteRanges(value: string): ByteRangeSpec[] | undefined {
  const eq = value.indexOf('=');
  if (eq < 0) return undefined;
  const unit = value.slice(0, eq);
  // RFC 9110 §14.1: range units are case-insensitive tokens; we understand only "bytes".
  if (!TOKEN.test(unit) || unit.toLowerCase() !== 'bytes') return undefined;
  const specs: ByteRangeSpec[] = [];
  for (const raw of value.slice(eq + 1).split(',')) {
    const element = raw.replace(/^[ \t]+|[ \t]+$/g, '');
    if (element === '') continue; // RFC 9110 §5.6.1: empty list elements are ignored
    const int = INT_RANGE.exec(element);
    if (int) {
      const first = Number(int[1]);
      const last = int[2] === '' ? undefined : Number(int[2]);
      // RFC 9110 §14.1.1: invalid if last-pos is present and less than first-pos.
      if (last !== undefined && last < first) return undefined;
      specs.push({ kind: 'int', first, last });
      continue;
    }
    const suffix = SUFFIX_RANGE.exec(element);
    if (!suffix) return undefined;
    specs.push({ kind: 'suffix', length: Number(suffix[1]) });
  }
  // RFC 9110 §14.1.2: range-set = 1#range-spec
  return specs.length === 0 ? undefined : specs;
}

/**
 * If-Range (RFC 9110 §13.1.5): true when the validator matches the current representation, so
 * the Range header is honoured. An entity-tag must match by strong comparison (a weak tag never
 * does); an HTTP-date must equal Last-Modified exactly (to the second), and Last-Modified must
 * be strong: at least one second before the representation's Date (§8.8.2.2), else it may name
 * two versions written in the same second. Anything else fails: the whole representation is sent.
 */
export function ifRangeMatches(value: string, v: Validators): boolean {
  const trimmed = value.trim();
  if (trimmed.startsWith('"') || trimmed.startsWith('W/"')) {
    return v.etag !== undefined && strongMatch(trimmed, v.etag);
  }
  const date = parseHttpDate(trimmed);
  if (date === undefined || v.lastModified === undefined) return false;
  const lastModified = Math.floor(v.lastModified / 1000) * 1000;
  return lastModified === date && Math.floor((v.date ?? Date.now()) / 1000) * 1000 - lastModified >= 1000;
}

/** The satisfiable [start, end] of one spec for a non-empty representation (RFC 9110 §14.1.1). */
function resolve(spec: ByteRangeSpec, size: number): [number, number] | undefined {
  if (spec.kind === 'suffix') {
    if (spec.length === 0) return undefined; // a zero-length suffix is unsatisfiable
    return [Math.max(0, size - spec.length), size - 1];
  }
  if (spec.first >= size) return undefined; // first-pos at or past the end
  const last = spec.last === undefined ? size - 1 : Math.min(spec.last, size - 1); // clamp
  return [spec.first, last];
}

/**
 * Decides how to answer a request's Range header for a representation of `size` bytes whose
 * validators are `v` (RFC 9110 §14.2).
 *
 * - Only GET has range semantics (§14.2); any other method gets 'full'.
 * - No Range, a failing If-Range (§13.1.5), an unknown unit, or invalid syntax: 'full'.
 * - A zero-length representation: a non-zero suffix-range is the only satisfiable form, but it
 *   selects no bytes and Content-Range cannot express an empty range, so it gets 'full' (the
 *   empty 200); every other range is 'unsatisfiable' (§14.1.1).
 */
export function evaluateRange(method: string, req: HeaderGetter, size: number, v: Validators): RangeDecision {
  if (method !== 'GET') return FULL;
  const range = req.get('range');
  if (range === null || range === undefined) return FULL;
  // RFC 9110 §13.1.5: If-Range is ignored without Range, and a mismatch means "send it all".
  const ifRange = req.get('if-range');
  if (ifRange !== null && ifRange !== undefined && !ifRangeMatches(ifRange, v)) return FULL;

  const specs = parseByteRanges(range);
  if (specs === undefined || specs.length > MAX_RANGE_SPECS) return FULL;

  if (size === 0) {
    return specs.some((s) => s.kind === 'suffix' && s.length > 0) ? FULL : UNSATISFIABLE;
  }
  const ranges = specs.map((s) => resolve(s, size)).filter((r): r is [number, number] => r !== undefined);
  if (ranges.length === 0) return UNSATISFIABLE; // §14.2: SHOULD send 416
  const merged = coalesce(ranges);
  if (merged.length !== 1) return FULL; // no multipart/byteranges; §14.2 lets us ignore Range
  const [start, end] = merged[0]!;
  return { type: 'partial', start, end };
}

/** Merges overlapping or adjacent ranges (RFC 9110 §15.3.7.2). */
function coalesce(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [start, end] of sorted) {
    const prev = out[out.length - 1];
    if (prev && start <= prev[1] + 1) prev[1] = Math.max(prev[1], end);
    else out.push([start, end]);
  }
  return out;
}

/**
 * The Content-Range value for a decision (RFC 9110 §14.4): `bytes 0-9/100` for a partial
 * response, `bytes *\/100` for 416 (unsatisfied-range); `undefined` for a full response, which
 * carries no Content-Range.
 */
export function contentRangeHeader(d: Exclude<RangeDecision, { type: 'full' }>, size: number): string;
export function contentRangeHeader(d: RangeDecision, size: number): string | undefined;
export function contentRangeHeader(d: RangeDecision, size: number): string | undefined {
  switch (d.type) {
    case 'partial':
      return `bytes ${d.start}-${d.end}/${size}`;
    case 'unsatisfiable':
      return `bytes */${size}`;
    case 'full':
      return undefined;
  }
}
