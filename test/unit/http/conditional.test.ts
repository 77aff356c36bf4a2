import { describe, expect, it } from 'vitest';
import {
  type ConditionalOutcome,
  type Validators,
  evaluateConditional,
  parseEntityTags,
  strongMatch,
  weakMatch,
} from '../../../src/http/conditional.js';
import { headerGetter } from '../../../src/http/headers.js';

const LM = Date.UTC(2026, 0, 1, 12, 0, 0, 500); // Last-Modified with sub-second precision
const LM_DATE = 'Thu, 01 Jan 2026 12:00:00 GMT';
const BEFORE = 'Thu, 01 Jan 2026 11:59:59 GMT';
const AFTER = 'Thu, 01 Jan 2026 12:00:01 GMT';
const FUTURE = 'Fri, 01 Jan 2100 00:00:00 GMT';
const V: Validators = { etag: '"v1"', lastModified: LM };
const WEAK_V: Validators = { etag: 'W/"v1"', lastModified: LM };

describe('parseEntityTags (RFC 9110 §13.1.1, §13.1.2, §8.8.3)', () => {
  const rows: [string, string, string[] | '*'][] = [
    ['star', '*', '*'],
    ['star with OWS', '  * ', '*'],
    ['one strong', '"a"', ['"a"']],
    ['one weak', 'W/"a"', ['W/"a"']],
    ['list with OWS', '"a", W/"b" ,"c"', ['"a"', 'W/"b"', '"c"']],
    ['empty opaque-tag', '""', ['""']],
    ['comma inside opaque-tag is etagc', '"a,b", "c"', ['"a,b"', '"c"']],
    ['empty list elements ignored (§5.6.1)', ', "a",, "b",', ['"a"', '"b"']],
    ['unquoted member dropped', 'abc, "d"', ['"d"']],
    ['lower-case w/ is not weak (%s"W/")', 'w/"a", "b"', ['"b"']],
    ['unterminated quote dropped', '"a', []],
    ['two tags without comma dropped', '"a" "b", "c"', ['"c"']],
    ['space inside opaque-tag is not etagc', '"a b", "c"', ['"c"']],
    ['star inside a list is not "*"', '*, "a"', ['"a"']],
    ['empty value', '', []],
  ];
  it.each(rows)('%s', (_name, input, expected) => {
    expect(parseEntityTags(input)).toEqual(expected);
  });
});

describe('entity-tag comparison (RFC 9110 §8.8.3.2 table)', () => {
  const rows: [string, string, boolean, boolean][] = [
    ['W/"1"', 'W/"1"', false, true],
    ['W/"1"', 'W/"2"', false, false],
    ['W/"1"', '"1"', false, true],
    ['"1"', '"1"', true, true],
    ['"1"', '"2"', false, false],
    ['"a,b"', '"a,b"', true, true],
    ['abc', 'abc', false, false], // unquoted is not an entity-tag
    [' "1" ', '"1"', true, true],
  ];
  it.each(rows)('%s vs %s → strong %s, weak %s', (a, b, strong, weak) => {
    expect(strongMatch(a, b)).toBe(strong);
    expect(strongMatch(b, a)).toBe(strong);
    expect(weakMatch(a, b)).toBe(weak);
    expect(weakMatch(b, a)).toBe(weak);
  });
});

type Row = [name: string, method: string, headers: Record<string, string>, v: Validators | null, expected: ConditionalOutcome];

describe('evaluateConditional (RFC 9110 §13.2.2)', () => {
  const rows: Row[] = [
    ['no preconditions', 'GET', {}, V, 'proceed'],

    // Step 1: If-Match, strong comparison (§13.1.1)
    ['§13.1.1 If-Match same strong tag', 'PUT', { 'if-match': '"v1"' }, V, 'proceed'],
    ['§13.1.1 If-Match in a list', 'PUT', { 'if-match': '"v0", "v1"' }, V, 'proceed'],
    ['§13.1.1 If-Match other tag', 'PUT', { 'if-match': '"v2"' }, V, 'precondition-failed'],
    ['§13.1.1 If-Match weak tag never matches', 'PUT', { 'if-match': 'W/"v1"' }, V, 'precondition-failed'],
    ['§13.1.1 If-Match strong tag vs weak current', 'PUT', { 'if-match': '"v1"' }, WEAK_V, 'precondition-failed'],
    ['§13.1.1 If-Match on GET fails too (412)', 'GET', { 'if-match': '"v2"' }, V, 'precondition-failed'],
    ['§13.1.1 If-Match * with a representation', 'PUT', { 'if-match': '*' }, V, 'proceed'],
    ['§13.1.1 If-Match * without a representation', 'PUT', { 'if-match': '*' }, null, 'precondition-failed'],
    ['§13.1.1 If-Match tag without a representation', 'PUT', { 'if-match': '"v1"' }, null, 'precondition-failed'],
    ['§13.1.1 If-Match when the representation has no ETag', 'PUT', { 'if-match': '"v1"' }, { lastModified: LM }, 'precondition-failed'],
    ['§13.1.1 If-Match with only garbage', 'PUT', { 'if-match': 'v1' }, V, 'precondition-failed'],

    // Step 2: If-Unmodified-Since (§13.1.4)
    ['§13.1.4 IUS equal to Last-Modified (second granularity)', 'PUT', { 'if-unmodified-since': LM_DATE }, V, 'proceed'],
    ['§13.1.4 IUS after Last-Modified', 'PUT', { 'if-unmodified-since': AFTER }, V, 'proceed'],
    ['§13.1.4 IUS before Last-Modified', 'PUT', { 'if-unmodified-since': BEFORE }, V, 'precondition-failed'],
    ['§13.1.4 IUS before Last-Modified on GET', 'GET', { 'if-unmodified-since': BEFORE }, V, 'precondition-failed'],
    ['§13.1.4 IUS ignored when If-Match present', 'PUT', { 'if-match': '"v1"', 'if-unmodified-since': BEFORE }, V, 'proceed'],
    ['§13.1.4 IUS ignored when If-Match present even if empty', 'PUT', { 'if-match': '*', 'if-unmodified-since': BEFORE }, V, 'proceed'],
    ['§13.1.4 invalid IUS ignored', 'PUT', { 'if-unmodified-since': 'yesterday' }, V, 'proceed'],
    ['§13.1.4 IUS ignored without a modification date', 'PUT', { 'if-unmodified-since': BEFORE }, { etag: '"v1"' }, 'proceed'],
    ['§13.1.4 IUS ignored without a representation', 'PUT', { 'if-unmodified-since': BEFORE }, null, 'proceed'],

    // Step 3: If-None-Match, weak comparison (§13.1.2)
    ['§13.1.2 INM same tag on GET → 304', 'GET', { 'if-none-match': '"v1"' }, V, 'not-modified'],
    ['§13.1.2 INM same tag on HEAD → 304', 'HEAD', { 'if-none-match': '"v1"' }, V, 'not-modified'],
    ['§13.1.2 INM weak tag matches strong current (weak comparison)', 'GET', { 'if-none-match': 'W/"v1"' }, V, 'not-modified'],
    ['§13.1.2 INM strong tag matches weak current', 'GET', { 'if-none-match': '"v1"' }, WEAK_V, 'not-modified'],
    ['§13.1.2 INM in a list', 'GET', { 'if-none-match': '"a", "b", "v1"' }, V, 'not-modified'],
    ['§13.1.2 INM other tag', 'GET', { 'if-none-match': '"v2"' }, V, 'proceed'],
    ['§13.1.2 INM * on GET with a representation', 'GET', { 'if-none-match': '*' }, V, 'not-modified'],
    ['§13.1.2 INM * on PUT with a representation → 412', 'PUT', { 'if-none-match': '*' }, V, 'precondition-failed'],
    ['§13.1.2 INM * on PUT without a representation (create-only)', 'PUT', { 'if-none-match': '*' }, null, 'proceed'],
    ['§13.1.2 INM match on POST → 412', 'POST', { 'if-none-match': '"v1"' }, V, 'precondition-failed'],
    ['§13.1.2 INM match on DELETE → 412', 'DELETE', { 'if-none-match': '"v1"' }, V, 'precondition-failed'],
    ['§13.1.2 INM when the representation has no ETag', 'GET', { 'if-none-match': '"v1"' }, { lastModified: LM }, 'proceed'],
    ['§13.1.2 INM unquoted garbage never matches', 'GET', { 'if-none-match': 'v1' }, V, 'proceed'],
    ['§13.2.2 INM evaluated after a passing If-Match', 'GET', { 'if-match': '"v1"', 'if-none-match': '"v1"' }, V, 'not-modified'],
    ['§13.2.2 failing If-Match wins over INM', 'GET', { 'if-match': '"v2"', 'if-none-match': '"v1"' }, V, 'precondition-failed'],
    ['§13.2.2 failing IUS wins over INM', 'GET', { 'if-unmodified-since': BEFORE, 'if-none-match': '"v1"' }, V, 'precondition-failed'],

    // Step 4: If-Modified-Since (§13.1.3)
    ['§13.1.3 IMS equal to Last-Modified (second granularity) → 304', 'GET', { 'if-modified-since': LM_DATE }, V, 'not-modified'],
    ['§13.1.3 IMS after Last-Modified → 304', 'GET', { 'if-modified-since': AFTER }, V, 'not-modified'],
    ['§13.1.3 IMS in the future → 304 (only the two dates are compared)', 'GET', { 'if-modified-since': FUTURE }, V, 'not-modified'],
    ['§13.1.3 IMS before Last-Modified', 'GET', { 'if-modified-since': BEFORE }, V, 'proceed'],
    ['§13.1.3 IMS on HEAD', 'HEAD', { 'if-modified-since': LM_DATE }, V, 'not-modified'],
    ['§13.1.3 IMS obsolete RFC 850 form', 'GET', { 'if-modified-since': 'Thursday, 01-Jan-26 12:00:00 GMT' }, V, 'not-modified'],
    ['§13.1.3 IMS obsolete asctime form', 'GET', { 'if-modified-since': 'Thu Jan  1 12:00:00 2026' }, V, 'not-modified'],
    ['§13.1.3 IMS ignored on PUT', 'PUT', { 'if-modified-since': AFTER }, V, 'proceed'],
    ['§13.1.3 IMS ignored on POST', 'POST', { 'if-modified-since': AFTER }, V, 'proceed'],
    ['§13.1.3 IMS ignored when INM present (INM does not match)', 'GET', { 'if-none-match': '"v2"', 'if-modified-since': AFTER }, V, 'proceed'],
    ['§13.1.3 IMS ignored when INM present but empty', 'GET', { 'if-none-match': '', 'if-modified-since': AFTER }, V, 'proceed'],
    ['§13.1.3 invalid IMS ignored', 'GET', { 'if-modified-since': 'not a date' }, V, 'proceed'],
    ['§13.1.3 IMS with two members ignored', 'GET', { 'if-modified-since': `${AFTER}, ${AFTER}` }, V, 'proceed'],
    ['§13.1.3 IMS ignored without a modification date', 'GET', { 'if-modified-since': AFTER }, { etag: '"v1"' }, 'proceed'],
    ['§13.1.3 IMS ignored without a representation', 'GET', { 'if-modified-since': AFTER }, null, 'proceed'],
    ['§13.2.2 failing If-Match wins over IMS', 'GET', { 'if-match': '"v2"', 'if-modified-since': AFTER }, V, 'precondition-failed'],
    ['§13.2.2 passing If-Match then IMS → 304', 'GET', { 'if-match': '"v1"', 'if-modified-since': AFTER }, V, 'not-modified'],

    // §13.2.1: methods that do not select a representation ignore preconditions
    ['§13.2.1 OPTIONS ignores If-Match', 'OPTIONS', { 'if-match': '"v2"' }, V, 'proceed'],
    ['§13.2.1 TRACE ignores If-None-Match', 'TRACE', { 'if-none-match': '*' }, V, 'proceed'],
    ['§13.2.1 CONNECT ignores If-Unmodified-Since', 'CONNECT', { 'if-unmodified-since': BEFORE }, V, 'proceed'],
    ['§9.1 methods are case-sensitive: "get" is not GET', 'get', { 'if-none-match': '"v1"' }, V, 'precondition-failed'],
  ];
  it.each(rows)('%s', (_name, method, headers, v, expected) => {
    expect(evaluateConditional(method, headerGetter(headers), v)).toBe(expected);
  });

  it('accepts a WHATWG Headers object', () => {
    const h = new Headers({ 'If-None-Match': 'W/"v1"' });
    expect(evaluateConditional('GET', headerGetter(h), V)).toBe('not-modified');
  });
});
