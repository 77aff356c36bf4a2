import { describe, expect, it } from 'vitest';
import type { Validators } from '../../../src/http/conditional.js';
import { headerGetter } from '../../../src/http/headers.js';
import {
  type RangeDecision,
  contentRangeHeader,
  evaluateRange,
  ifRangeMatches,
  parseByteRanges,
} from '../../../src/http/range.js';

const LM = Date.UTC(2026, 0, 1, 12, 0, 0, 250);
const LM_DATE = 'Thu, 01 Jan 2026 12:00:00 GMT';
const V: Validators = { etag: '"v1"', lastModified: LM };
const FULL: RangeDecision = { type: 'full' };
const UNSAT: RangeDecision = { type: 'unsatisfiable' };
const part = (start: number, end: number): RangeDecision => ({ type: 'partial', start, end });

type Row = [name: string, method: string, headers: Record<string, string>, size: number, expected: RangeDecision];

describe('evaluateRange (RFC 9110 §14)', () => {
  const rows: Row[] = [
    ['no Range header', 'GET', {}, 100, FULL],
    ['§14.1.2 first-last', 'GET', { range: 'bytes=0-9' }, 100, part(0, 9)],
    ['§14.1.2 single byte', 'GET', { range: 'bytes=5-5' }, 100, part(5, 5)],
    ['§14.1.2 open-ended first-', 'GET', { range: 'bytes=10-' }, 100, part(10, 99)],
    ['§14.1.2 whole via 0-', 'GET', { range: 'bytes=0-' }, 100, part(0, 99)],
    ['§14.1.2 last byte', 'GET', { range: 'bytes=99-' }, 100, part(99, 99)],
    ['§14.1.2 suffix -n', 'GET', { range: 'bytes=-10' }, 100, part(90, 99)],
    ['§14.1.2 suffix longer than representation', 'GET', { range: 'bytes=-500' }, 100, part(0, 99)],
    ['§14.1.1 last-pos clamped to size-1', 'GET', { range: 'bytes=50-1000' }, 100, part(50, 99)],
    ['§14.1.1 last-pos exactly size-1', 'GET', { range: 'bytes=0-99' }, 100, part(0, 99)],
    ['§14.1.1 huge last-pos clamped', 'GET', { range: 'bytes=0-99999999999999999999' }, 100, part(0, 99)],
    ['§14.1 unit is case-insensitive', 'GET', { range: 'Bytes=0-9' }, 100, part(0, 9)],
    ['§5.6.1 OWS around list element', 'GET', { range: 'bytes= 0-9 ' }, 100, part(0, 9)],
    ['§5.6.1 empty list elements ignored', 'GET', { range: 'bytes=,0-9,' }, 100, part(0, 9)],

    // Unsatisfiable (§14.1.1, §15.5.17)
    ['§14.1.1 first-pos equal to size', 'GET', { range: 'bytes=100-' }, 100, UNSAT],
    ['§14.1.1 first-pos past size', 'GET', { range: 'bytes=200-300' }, 100, UNSAT],
    ['§14.1.1 zero suffix-length', 'GET', { range: 'bytes=-0' }, 100, UNSAT],
    ['§14.2 all of several ranges unsatisfiable', 'GET', { range: 'bytes=100-,-0,500-600' }, 100, UNSAT],
    ['§14.1.1 zero-length representation, int-range', 'GET', { range: 'bytes=0-' }, 0, UNSAT],
    ['§14.1.1 zero-length representation, 0-0', 'GET', { range: 'bytes=0-0' }, 0, UNSAT],
    ['§14.1.1 zero-length representation, zero suffix', 'GET', { range: 'bytes=-0' }, 0, UNSAT],
    ['§14.1.1 zero-length representation, non-zero suffix is satisfiable but empty → 200', 'GET', { range: 'bytes=-5' }, 0, FULL],

    // Multiple ranges: coalesced (§15.3.7.2) or ignored (no multipart)
    ['§15.3.7.2 overlapping ranges coalesce', 'GET', { range: 'bytes=0-10,5-20' }, 100, part(0, 20)],
    ['§15.3.7.2 adjacent ranges coalesce', 'GET', { range: 'bytes=0-9, 10-19' }, 100, part(0, 19)],
    ['§15.3.7.2 out of order, coalesce', 'GET', { range: 'bytes=10-19,0-9' }, 100, part(0, 19)],
    ['§15.3.7.2 suffix and int coalesce', 'GET', { range: 'bytes=-10,80-89' }, 100, part(80, 99)],
    ['§14.2 unsatisfiable members dropped before coalescing', 'GET', { range: 'bytes=0-9,200-' }, 100, part(0, 9)],
    ['§14.2 disjoint ranges → full (no multipart)', 'GET', { range: 'bytes=0-1,5-6' }, 100, FULL],
    ['§17.15 more than 100 range-specs ignored', 'GET', { range: `bytes=${Array(101).fill('0-1').join(',')}` }, 100, FULL],
    ['§17.15 exactly 100 range-specs accepted', 'GET', { range: `bytes=${Array(100).fill('0-1').join(',')}` }, 100, part(0, 1)],

    // Ignored: methods, syntax, units (§14.2)
    ['§14.2 HEAD ignores Range', 'HEAD', { range: 'bytes=0-9' }, 100, FULL],
    ['§14.2 PUT ignores Range', 'PUT', { range: 'bytes=0-9' }, 100, FULL],
    ['§14.2 unknown unit ignored', 'GET', { range: 'items=0-9' }, 100, FULL],
    ['§14.1.1 last-pos < first-pos is invalid → ignored', 'GET', { range: 'bytes=9-0' }, 100, FULL],
    ['§14.1.1 one invalid spec invalidates the set', 'GET', { range: 'bytes=0-9,9-0' }, 100, FULL],
    ['§14.1.2 missing =', 'GET', { range: 'bytes 0-9' }, 100, FULL],
    ['§14.1.2 space before =', 'GET', { range: 'bytes =0-9' }, 100, FULL],
    ['§14.1.2 empty range-set', 'GET', { range: 'bytes=' }, 100, FULL],
    ['§14.1.2 only commas', 'GET', { range: 'bytes=,,' }, 100, FULL],
    ['§14.1.2 bare dash', 'GET', { range: 'bytes=-' }, 100, FULL],
    ['§14.1.2 negative first-pos', 'GET', { range: 'bytes=--5' }, 100, FULL],
    ['§14.1.2 non-digits', 'GET', { range: 'bytes=a-b' }, 100, FULL],
    ['§14.1.2 decimal', 'GET', { range: 'bytes=1.5-2' }, 100, FULL],
    ['§14.1.2 whitespace inside a spec', 'GET', { range: 'bytes=0 - 9' }, 100, FULL],
    ['§14.1.2 empty value', 'GET', { range: '' }, 100, FULL],

    // If-Range (§13.1.5)
    ['§13.1.5 If-Range matching strong ETag', 'GET', { range: 'bytes=0-9', 'if-range': '"v1"' }, 100, part(0, 9)],
    ['§13.1.5 If-Range other ETag → full', 'GET', { range: 'bytes=0-9', 'if-range': '"v2"' }, 100, FULL],
    ['§13.1.5 If-Range weak ETag never matches → full', 'GET', { range: 'bytes=0-9', 'if-range': 'W/"v1"' }, 100, FULL],
    ['§13.1.5 If-Range date equal to Last-Modified', 'GET', { range: 'bytes=0-9', 'if-range': LM_DATE }, 100, part(0, 9)],
    ['§13.1.5 If-Range later date → full (exact match only)', 'GET', { range: 'bytes=0-9', 'if-range': 'Thu, 01 Jan 2026 12:00:01 GMT' }, 100, FULL],
    ['§13.1.5 If-Range earlier date → full', 'GET', { range: 'bytes=0-9', 'if-range': 'Thu, 01 Jan 2026 11:59:59 GMT' }, 100, FULL],
    ['§13.1.5 If-Range garbage → full', 'GET', { range: 'bytes=0-9', 'if-range': 'v1' }, 100, FULL],
    ['§13.1.5 If-Range mismatch also bypasses 416', 'GET', { range: 'bytes=500-', 'if-range': '"v2"' }, 100, FULL],
    ['§13.1.5 If-Range match keeps 416', 'GET', { range: 'bytes=500-', 'if-range': '"v1"' }, 100, UNSAT],
    ['§13.1.5 If-Range without Range ignored', 'GET', { 'if-range': '"v2"' }, 100, FULL],
  ];
  it.each(rows)('%s', (_name, method, headers, size, expected) => {
    expect(evaluateRange(method, headerGetter(headers), size, V)).toEqual(expected);
  });

  it('§13.1.5 If-Range ETag when the representation has no ETag → full', () => {
    const h = headerGetter({ range: 'bytes=0-9', 'if-range': '"v1"' });
    expect(evaluateRange('GET', h, 100, { lastModified: LM })).toEqual(FULL);
  });

  it('§13.1.5 If-Range date when the representation has no Last-Modified → full', () => {
    const h = headerGetter({ range: 'bytes=0-9', 'if-range': LM_DATE });
    expect(evaluateRange('GET', h, 100, { etag: '"v1"' })).toEqual(FULL);
  });
});

describe('ifRangeMatches (RFC 9110 §13.1.5)', () => {
  const rows: [string, string, boolean][] = [
    ['strong ETag', '"v1"', true],
    ['strong ETag with OWS', ' "v1" ', true],
    ['weak ETag', 'W/"v1"', false],
    ['IMF-fixdate equal', LM_DATE, true],
    ['asctime equal', 'Thu Jan  1 12:00:00 2026', true],
    ['empty', '', false],
  ];
  it.each(rows)('%s', (_name, value, expected) => {
    expect(ifRangeMatches(value, V)).toBe(expected);
  });

  // §8.8.2.2: a Last-Modified within the second of the response's Date may name two versions.
  it.each([
    ['sent in the same second as it was modified', 700, false],
    ['sent in the next second', 750, true],
  ])('an equal date, %s: %s', (_name, after, expected) => {
    expect(ifRangeMatches(LM_DATE, { ...V, date: LM + after })).toBe(expected);
  });
});

describe('parseByteRanges (RFC 9110 §14.1.2)', () => {
  it('returns each spec in order', () => {
    expect(parseByteRanges('bytes=0-9,-5,10-')).toEqual([
      { kind: 'int', first: 0, last: 9 },
      { kind: 'suffix', length: 5 },
      { kind: 'int', first: 10, last: undefined },
    ]);
  });
  it('rejects other units', () => {
    expect(parseByteRanges('none=0-9')).toBeUndefined();
  });
});

describe('contentRangeHeader (RFC 9110 §14.4)', () => {
  const rows: [string, RangeDecision, number, string | undefined][] = [
    ['§14.4 partial', part(0, 9), 100, 'bytes 0-9/100'],
    ['§14.4 last byte', part(99, 99), 100, 'bytes 99-99/100'],
    ['§14.4 unsatisfied-range for 416', UNSAT, 100, 'bytes */100'],
    ['§14.4 unsatisfied-range for an empty representation', UNSAT, 0, 'bytes */0'],
    ['§14.4 no Content-Range on a full response', FULL, 100, undefined],
  ];
  it.each(rows)('%s', (_name, d, size, expected) => {
    expect(contentRangeHeader(d, size)).toBe(expected);
  });
});
