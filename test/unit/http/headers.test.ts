import { describe, expect, it } from 'vitest';
import { headerGetter, httpDate, parseHttpDate } from '../../../src/http/headers.js';

const NOW = Date.UTC(2026, 0, 1);
const RFC_EXAMPLE = Date.UTC(1994, 10, 6, 8, 49, 37); // Sun, 06 Nov 1994 08:49:37 GMT

describe('headerGetter', () => {
  it('reads a WHATWG Headers case-insensitively', () => {
    const h = new Headers({ 'Content-Type': 'image/png' });
    expect(headerGetter(h).get('content-type')).toBe('image/png');
    expect(headerGetter(h).get('CONTENT-TYPE')).toBe('image/png');
    expect(headerGetter(h).get('etag')).toBeNull();
  });

  const rows: [string, Record<string, string | string[] | undefined>, string, string | undefined][] = [
    ['lower-case key', { etag: '"a"' }, 'ETag', '"a"'],
    ['mixed-case key', { ETag: '"a"' }, 'etag', '"a"'],
    ['array value joined (RFC 9110 §5.3)', { 'cache-control': ['max-age=1', 'public'] }, 'Cache-Control', 'max-age=1, public'],
    ['keys differing in case combined (RFC 9110 §5.3)', { Vary: 'Accept', vary: 'Origin' }, 'vary', 'Accept, Origin'],
    ['undefined value is absent', { etag: undefined }, 'etag', undefined],
    ['missing key is absent', {}, 'etag', undefined],
    ['empty string is present', { 'if-none-match': '' }, 'if-none-match', ''],
  ];
  it.each(rows)('record: %s', (_name, record, name, expected) => {
    expect(headerGetter(record).get(name)).toBe(expected);
  });
});

describe('httpDate (RFC 9110 §5.6.7 IMF-fixdate)', () => {
  const rows: [string, number, string][] = [
    ['RFC 9110 §5.6.7 example', RFC_EXAMPLE, 'Sun, 06 Nov 1994 08:49:37 GMT'],
    ['epoch', 0, 'Thu, 01 Jan 1970 00:00:00 GMT'],
    ['new year 2026', NOW, 'Thu, 01 Jan 2026 00:00:00 GMT'],
    ['sub-second truncated', NOW + 999, 'Thu, 01 Jan 2026 00:00:00 GMT'],
    ['leap day', Date.UTC(2024, 1, 29, 23, 59, 59), 'Thu, 29 Feb 2024 23:59:59 GMT'],
    ['single-digit fields padded', Date.UTC(2026, 2, 5, 4, 3, 2), 'Thu, 05 Mar 2026 04:03:02 GMT'],
  ];
  it.each(rows)('%s', (_name, ms, expected) => {
    expect(httpDate(ms)).toBe(expected);
  });

  it.each([NaN, Infinity, -Infinity])('rejects non-finite %s', (ms) => {
    expect(() => httpDate(ms)).toThrow(/HTTP-date/);
  });

  it('round-trips through parseHttpDate', () => {
    for (const ms of [0, RFC_EXAMPLE, NOW, Date.UTC(2099, 11, 31, 23, 59, 59)]) {
      expect(parseHttpDate(httpDate(ms))).toBe(ms);
    }
  });
});

describe('parseHttpDate (RFC 9110 §5.6.7)', () => {
  const rows: [string, string | null | undefined, number | undefined][] = [
    ['IMF-fixdate', 'Sun, 06 Nov 1994 08:49:37 GMT', RFC_EXAMPLE],
    ['obsolete RFC 850', 'Sunday, 06-Nov-94 08:49:37 GMT', RFC_EXAMPLE],
    ['obsolete asctime, space-padded day', 'Sun Nov  6 08:49:37 1994', RFC_EXAMPLE],
    ['obsolete asctime, two-digit day', 'Sun Nov 16 08:49:37 1994', Date.UTC(1994, 10, 16, 8, 49, 37)],
    ['surrounding OWS is not part of the value (§5.5)', '  Sun, 06 Nov 1994 08:49:37 GMT\t', RFC_EXAMPLE],
    ['leap second 60 folds forward', 'Wed, 31 Dec 2025 23:59:60 GMT', NOW],
    ['RFC 850 year 05 without clock → 2005', 'Saturday, 01-Jan-05 00:00:00 GMT', Date.UTC(2005, 0, 1)],
    ['RFC 850 year 69 without clock → 2069', 'Tuesday, 01-Jan-69 00:00:00 GMT', Date.UTC(2069, 0, 1)],
    ['RFC 850 year 70 without clock → 1970', 'Thursday, 01-Jan-70 00:00:00 GMT', 0],
    ['day name is not cross-checked', 'Mon, 06 Nov 1994 08:49:37 GMT', RFC_EXAMPLE],
    ['year 0001 is not mapped to 1901', 'Mon, 01 Jan 0001 00:00:00 GMT', -62135596800000],
    ['null', null, undefined],
    ['undefined', undefined, undefined],
    ['empty', '', undefined],
    ['a number of seconds (Expires: 0)', '0', undefined],
    ['Expires: -1', '-1', undefined],
    ['ISO 8601 is not an HTTP-date', '2026-01-01T00:00:00Z', undefined],
    ['lower-case GMT (HTTP-date is case-sensitive)', 'Sun, 06 Nov 1994 08:49:37 gmt', undefined],
    ['lower-case month', 'Sun, 06 nov 1994 08:49:37 GMT', undefined],
    ['other time zone', 'Sun, 06 Nov 1994 08:49:37 UTC', undefined],
    ['numeric offset', 'Sun, 06 Nov 1994 08:49:37 +0000', undefined],
    ['single-digit day in IMF-fixdate', 'Sun, 6 Nov 1994 08:49:37 GMT', undefined],
    ['two-digit year in IMF-fixdate', 'Sun, 06 Nov 94 08:49:37 GMT', undefined],
    ['unknown day name', 'Sux, 06 Nov 1994 08:49:37 GMT', undefined],
    ['unknown long day name in RFC 850', 'Funday, 06-Nov-94 08:49:37 GMT', undefined],
    ['short day name in RFC 850', 'Sun, 06-Nov-94 08:49:37 GMT', undefined],
    ['unknown month', 'Sun, 06 Foo 1994 08:49:37 GMT', undefined],
    ['31 February', 'Sun, 31 Feb 1994 08:49:37 GMT', undefined],
    ['29 February of a non-leap year', 'Sun, 29 Feb 2025 08:49:37 GMT', undefined],
    ['day 00', 'Sun, 00 Nov 1994 08:49:37 GMT', undefined],
    ['hour 24', 'Sun, 06 Nov 1994 24:00:00 GMT', undefined],
    ['minute 60', 'Sun, 06 Nov 1994 08:60:00 GMT', undefined],
    ['second 61', 'Sun, 06 Nov 1994 08:49:61 GMT', undefined],
    ['two dates (a list is not one HTTP-date)', 'Sun, 06 Nov 1994 08:49:37 GMT, Sun, 06 Nov 1994 08:49:37 GMT', undefined],
    ['trailing garbage', 'Sun, 06 Nov 1994 08:49:37 GMT x', undefined],
    ['asctime with zero-padded day', 'Sun Nov 06 08:49:37 1994', Date.UTC(1994, 10, 6, 8, 49, 37)],
    ['asctime with GMT suffix', 'Sun Nov  6 08:49:37 1994 GMT', undefined],
  ];
  it.each(rows)('%s', (_name, input, expected) => {
    expect(parseHttpDate(input)).toBe(expected);
  });

  const pivotRows: [string, string, number, number][] = [
    ['94 seen from 2026 → 1994', 'Sunday, 06-Nov-94 08:49:37 GMT', NOW, RFC_EXAMPLE],
    ['76 seen from 2026 → 2076 (exactly 50 years ahead is allowed)', 'Sunday, 01-Nov-76 00:00:00 GMT', NOW, Date.UTC(2076, 10, 1)],
    ['77 seen from 2026 → 1977 (more than 50 years ahead)', 'Tuesday, 01-Nov-77 00:00:00 GMT', NOW, Date.UTC(1977, 10, 1)],
    ['05 seen from 2090 → 2105', 'Saturday, 01-Jan-05 00:00:00 GMT', Date.UTC(2090, 0, 1), Date.UTC(2105, 0, 1)],
    ['50 seen from 2099 → 2050', 'Saturday, 01-Jan-50 00:00:00 GMT', Date.UTC(2099, 0, 1), Date.UTC(2050, 0, 1)],
  ];
  it.each(pivotRows)('RFC 9110 §5.6.7 two-digit year with a clock: %s', (_name, input, now, expected) => {
    expect(parseHttpDate(input, now)).toBe(expected);
  });
});
