/**
 * Image parameter parsing: the canonical form of every accepted query, and the exact 400 for every
 * rejected one.
 */
import { describe, expect, it } from 'vitest';
import { CdnError } from '../../../src/errors.js';
import {
  parseImageParams,
  variantName,
  type ImageParamOptions,
  type ImageParams,
} from '../../../src/image/params.js';

const DEFAULTS: ImageParamOptions = { maxOutputDimension: 8192 };

function parse(query: string | Array<[string, string]>, options: ImageParamOptions = DEFAULTS) {
  return parseImageParams(new URLSearchParams(query), options);
}

function errorOf(fn: () => unknown): CdnError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CdnError) return err;
    throw err;
  }
  throw new Error('expected a CdnError, nothing was thrown');
}

describe('parseImageParams: accepted queries', () => {
  it.each<[string, string | undefined]>([
    // No image parameter at all: plain file, cache busters and sig left alone.
    ['', undefined],
    ['v=3', undefined],
    ['v=3&foo=bar', undefined],
    ['sig=abc', undefined],
    // Nothing left after normalisation: serve the original.
    ['dpr=2', undefined],
    ['fit=contain', undefined],
    ['fit=cover&dpr=1.5', undefined],
    ['sig=abc&dpr=3', undefined],
    // Plain values.
    ['w=800', 'w=800'],
    ['h=600', 'h=600'],
    ['w=1', 'w=1'],
    ['w=8192&h=8192', 'h=8192&w=8192'],
    ['w=007', 'w=7'],
    ['fmt=auto', 'fmt=auto'],
    ['fmt=jpeg', 'fmt=jpeg'],
    ['q=80', 'q=80'],
    ['q=1&fmt=png', 'fmt=png&q=1'],
    ['q=100', 'q=100'],
    // Sorted by key, whatever the order given.
    ['w=800&h=600&fit=contain&fmt=webp&q=80', 'fit=contain&fmt=webp&h=600&q=80&w=800'],
    ['q=80&fmt=webp&fit=contain&h=600&w=800', 'fit=contain&fmt=webp&h=600&q=80&w=800'],
    ['fmt=webp&q=80&h=600&w=800&fit=contain', 'fit=contain&fmt=webp&h=600&q=80&w=800'],
    // fit dropped when default or with one dimension.
    ['w=800&h=600&fit=cover', 'h=600&w=800'],
    ['w=800&h=600&fit=inside', 'fit=inside&h=600&w=800'],
    ['w=800&h=600&fit=outside', 'fit=outside&h=600&w=800'],
    ['w=800&h=600&fit=fill', 'fit=fill&h=600&w=800'],
    ['w=800&fit=contain', 'w=800'],
    ['h=600&fit=fill', 'h=600'],
    ['fit=contain&fmt=webp', 'fmt=webp'],
    // dpr folded into the dimensions, then omitted.
    ['w=400&dpr=2', 'w=800'],
    ['w=800&dpr=1', 'w=800'],
    ['w=800&dpr=1.00', 'w=800'],
    ['w=400&h=300&dpr=1.5', 'h=450&w=600'],
    ['h=300&dpr=2.5&fit=contain', 'h=750'],
    ['w=333&dpr=1.15', 'w=383'],
    ['w=25&dpr=1.14', 'w=29'], // exactly 28.5 rounds up; w * 1.14 in floating point is 28.4999…
    ['w=30&dpr=2.05', 'w=62'], // exactly 61.5
    ['w=4096&dpr=2', 'w=8192'],
    ['w=2048&h=2048&dpr=4', 'h=8192&w=8192'],
    ['dpr=4&fmt=png', 'fmt=png'],
    ['w=400&dpr=2&fit=contain&h=300', 'fit=contain&h=600&w=800'],
    // sig ignored, even repeated.
    ['w=800&sig=xyz', 'w=800'],
    ['sig=a&fmt=auto&sig=b&w=400', 'fmt=auto&w=400'],
  ])('%j → %j', (query, canonical) => {
    expect(parse(query)?.canonical).toBe(canonical);
  });

  it('returns normalised params without dpr or meaningless fit', () => {
    expect(parse('w=400&h=300&dpr=2&fit=contain&fmt=auto&q=70')).toStrictEqual({
      params: { w: 800, h: 600, fit: 'contain', fmt: 'auto', q: 70 },
      canonical: 'fit=contain&fmt=auto&h=600&q=70&w=800',
    });
    expect(parse('w=400&dpr=2&fit=cover')).toStrictEqual({
      params: { w: 800 },
      canonical: 'w=800',
    });
  });
});

describe('parseImageParams: rejected queries', () => {
  const intW = (got: string) => `w must be an integer from 1 to 8192, got ${got}`;
  const dprMsg = (got: string) =>
    `dpr must be a number from 1 to 4 with at most 2 decimal places, got ${got}`;
  const allowed = 'allowed: w, h, dpr, fit, fmt, q, sig';
  const fits = 'cover, contain, fill, inside, outside';

  it.each<[string | Array<[string, string]>, string, string]>([
    // Unknown names, checked before values.
    ['w=400&foo=1', 'foo', `unknown image parameter "foo"; ${allowed}`],
    ['W=400&w=1', 'W', `unknown image parameter "W"; ${allowed}`],
    ['w=abc&width=1', 'width', `unknown image parameter "width"; ${allowed}`],
    ['fmt=auto&v=3', 'v', `unknown image parameter "v"; ${allowed}`],
    // Repeated and empty.
    ['w=400&w=400', 'w', 'w must be given at most once, got 2 values'],
    ['fmt=webp&h=1&fmt=avif&fmt=png', 'fmt', 'fmt must be given at most once, got 3 values'],
    ['w=', 'w', 'w must not be empty'],
    ['w', 'w', 'w must not be empty'],
    ['w=400&q=', 'q', 'q must not be empty'],
    ['dpr=', 'dpr', 'dpr must not be empty'],
    // w / h: plain positive decimal integers within the bound.
    [[['w', 'abc']], 'w', intW('"abc"')],
    [[['w', '+5']], 'w', intW('"+5"')],
    [[['w', '1e3']], 'w', intW('"1e3"')],
    [[['w', '0x10']], 'w', intW('"0x10"')],
    [[['w', '5.0']], 'w', intW('"5.0"')],
    [[['w', '-1']], 'w', intW('"-1"')],
    [[['w', ' 5']], 'w', intW('" 5"')],
    [[['w', '5 ']], 'w', intW('"5 "')],
    [[['w', '٥']], 'w', intW('"٥"')], // Arabic-Indic digit five
    [[['w', '0']], 'w', intW('"0"')],
    [[['w', '8193']], 'w', intW('"8193"')],
    [[['w', '99999999999999999999999']], 'w', intW('"99999999999999999999999"')],
    [[['w', 'x'.repeat(100)]], 'w', intW(`"${'x'.repeat(64)}…"`)],
    [[['h', 'abc']], 'h', 'h must be an integer from 1 to 8192, got "abc"'],
    [[['h', '0']], 'h', 'h must be an integer from 1 to 8192, got "0"'],
    [[['h', '9000']], 'h', 'h must be an integer from 1 to 8192, got "9000"'],
    // dpr: 1..4, at most two decimals.
    [[['dpr', '0.5']], 'dpr', dprMsg('"0.5"')],
    [[['dpr', '5']], 'dpr', dprMsg('"5"')],
    [[['dpr', '4.01']], 'dpr', dprMsg('"4.01"')],
    [[['dpr', '0.99']], 'dpr', dprMsg('"0.99"')],
    [[['dpr', '1.555']], 'dpr', dprMsg('"1.555"')],
    [[['dpr', '1.']], 'dpr', dprMsg('"1."')],
    [[['dpr', '.5']], 'dpr', dprMsg('".5"')],
    [[['dpr', '2e0']], 'dpr', dprMsg('"2e0"')],
    [[['dpr', '-2']], 'dpr', dprMsg('"-2"')],
    [[['dpr', 'abc']], 'dpr', dprMsg('"abc"')],
    [[['dpr', 'Infinity']], 'dpr', dprMsg('"Infinity"')],
    [[['w', '400'], ['dpr', '2x']], 'dpr', dprMsg('"2x"')],
    // fit / fmt enums, case-sensitive.
    ['w=1&h=1&fit=crop', 'fit', `fit must be one of ${fits}, got "crop"`],
    ['fit=Cover', 'fit', `fit must be one of ${fits}, got "Cover"`],
    ['fmt=jpg', 'fmt', 'fmt must be one of auto, avif, webp, jpeg, png, got "jpg"'],
    ['fmt=gif', 'fmt', 'fmt must be one of auto, avif, webp, jpeg, png, got "gif"'],
    ['fmt=WEBP', 'fmt', 'fmt must be one of auto, avif, webp, jpeg, png, got "WEBP"'],
    // q: integer 1..100.
    ['q=0', 'q', 'q must be an integer from 1 to 100, got "0"'],
    ['q=101', 'q', 'q must be an integer from 1 to 100, got "101"'],
    ['q=80.5', 'q', 'q must be an integer from 1 to 100, got "80.5"'],
    ['q=-5', 'q', 'q must be an integer from 1 to 100, got "-5"'],
    ['q=high', 'q', 'q must be an integer from 1 to 100, got "high"'],
    // The output bound after folding dpr is the dpr's fault.
    ['w=5000&dpr=2', 'dpr', 'w × dpr must be at most 8192 pixels, got 5000 × 2 = 10000'],
    ['h=3000&dpr=3', 'dpr', 'h × dpr must be at most 8192 pixels, got 3000 × 3 = 9000'],
    ['w=4096&dpr=2.01', 'dpr', 'w × dpr must be at most 8192 pixels, got 4096 × 2.01 = 8233'],
  ])('%j → 400 on %s', (query, field, message) => {
    const err = errorOf(() => parse(query));
    expect({ code: err.code, source: err.source, status: err.status, field: err.field }).toEqual({
      code: 'invalid_param',
      source: 'client',
      status: 400,
      field,
    });
    expect(err.message).toBe(message);
  });
});

describe('parseImageParams: options', () => {
  const widths: ImageParamOptions = { maxOutputDimension: 8192, allowedWidths: [320, 640, 1280] };
  const small: ImageParamOptions = { maxOutputDimension: 2000 };

  it.each<[string, ImageParamOptions, string]>([
    ['w=640', widths, 'w=640'],
    ['w=640&dpr=2', widths, 'w=1280'],
    ['w=640&dpr=3', widths, 'w=1920'], // the requested width is checked, not the folded one
    ['h=320&w=640', widths, 'h=320&w=640'],
    ['w=500', { maxOutputDimension: 8192, allowedWidths: [] }, 'w=500'],
    ['w=2000&h=2000', small, 'h=2000&w=2000'],
    ['w=1000&dpr=2', small, 'w=2000'],
  ])('%j with %j → %j', (query, options, canonical) => {
    expect(parse(query, options)?.canonical).toBe(canonical);
  });

  it.each<[string, ImageParamOptions, string, string]>([
    ['w=500', widths, 'w', 'w must be one of 320, 640, 1280, got "500"'],
    ['w=321&h=100', widths, 'w', 'w must be one of 320, 640, 1280, got "321"'],
    // Otherwise h or a fractional dpr would make any size the list forbids.
    ['h=137', widths, 'h', 'h must be one of 320, 640, 1280 (the allowed sizes), got "137"'],
    ['w=320&dpr=1.37', widths, 'dpr', 'dpr must be a whole number (1 to 4) when sizes are restricted, got "1.37"'],
    ['w=2001', small, 'w', 'w must be an integer from 1 to 2000, got "2001"'],
    ['h=2001', small, 'h', 'h must be an integer from 1 to 2000, got "2001"'],
    ['w=1001&dpr=2', small, 'dpr', 'w × dpr must be at most 2000 pixels, got 1001 × 2 = 2002'],
  ])('%j with %j → 400 on %s', (query, options, field, message) => {
    const err = errorOf(() => parse(query, options));
    expect([err.code, err.status, err.field, err.message]).toEqual([
      'invalid_param',
      400,
      field,
      message,
    ]);
  });
});

describe('variantName', () => {
  it.each<[ImageParams, Parameters<typeof variantName>[1], string]>([
    [{ w: 800, fmt: 'auto' }, 'webp', 'fmt=webp&w=800'],
    [{ w: 800, fmt: 'auto' }, 'avif', 'fmt=avif&w=800'],
    [{ w: 800 }, 'jpeg', 'fmt=jpeg&w=800'],
    [{ fmt: 'png' }, 'png', 'fmt=png'],
    [{}, 'png', 'fmt=png'],
    [
      { w: 800, h: 600, fit: 'contain', fmt: 'auto', q: 80 },
      'avif',
      'fit=contain&fmt=avif&h=600&q=80&w=800',
    ],
  ])('%j as %s → %j', (params, output, name) => {
    expect(variantName(params, output)).toBe(name);
  });

  it('names the variant of a parsed request, dpr folded', () => {
    const request = parse('fmt=auto&dpr=2&w=400');
    expect(request?.canonical).toBe('fmt=auto&w=800');
    expect(variantName(request?.params ?? {}, 'webp')).toBe('fmt=webp&w=800');
  });
});

describe('misspelt image parameters are not silently ignored', () => {
  it.each([
    ['W=400', 'W', '"w"'],
    ['width=400', 'width', '"w"'],
    ['w[]=400', 'w[]', '"w"'],
    ['Format=webp', 'Format', '"fmt"'],
    ['quality=50', 'quality', '"q"'],
  ])('%s is a 400 naming %s', (qs, field, meant) => {
    try {
      parseImageParams(new URLSearchParams(qs), { maxOutputDimension: 8192 });
      throw new Error('expected an error');
    } catch (err) {
      expect((err as CdnError).field).toBe(field);
      expect((err as CdnError).status).toBe(400);
      expect((err as CdnError).message).toContain(`did you mean ${meant}`);
    }
  });

  it.each(['v=3', 'utm_source=x', 'cb=123&ref=home'])('leaves %s alone', (qs) => {
    expect(parseImageParams(new URLSearchParams(qs), { maxOutputDimension: 8192 })).toBeUndefined();
  });
});
