/**
 * Format negotiation: Accept parsing against real browser headers, and the output format for every
 * requested format, accept class and kind of source.
 */
import { describe, expect, it } from 'vitest';
import {
  acceptClass,
  acceptedFormats,
  isAnimatableOutput,
  negotiateFormat,
  negotiates,
  type AcceptClass,
  type NegotiateOptions,
  type SourceInfo,
} from '../../../src/image/negotiate.js';
import type { OutputFormat, RequestedFormat } from '../../../src/image/params.js';

const CHROME = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';
const SAFARI_16 =
  'image/webp,image/avif,image/jxl,image/heic,image/heic-sequence,video/*;q=0.8,image/png,' +
  'image/svg+xml,image/*;q=0.8,*/*;q=0.5';
const FIREFOX_OLD = 'image/webp,*/*';
const CURL = '*/*';
const NO_AVIF = 'image/avif;q=0';

describe('acceptClass / acceptedFormats', () => {
  it.each<[string | undefined | null, AcceptClass, boolean, boolean]>([
    [CHROME, 'avif', true, true],
    [SAFARI_16, 'avif', true, true],
    [FIREFOX_OLD, 'webp', false, true],
    [CURL, 'other', false, false],
    [NO_AVIF, 'other', false, false],
    [undefined, 'other', false, false],
    [null, 'other', false, false],
    ['', 'other', false, false],
    // Wildcards never imply AVIF or WebP.
    ['image/*', 'other', false, false],
    ['image/*,*/*;q=0.8', 'other', false, false],
    // q-values, case, whitespace and parameters.
    ['image/avif;q=0,image/webp', 'webp', false, true],
    ['image/avif;q=0.0,image/webp;q=0.000', 'other', false, false],
    ['image/avif;q=0.001', 'avif', true, false],
    ['image/avif;q=1,image/webp;q=1.0', 'avif', true, true],
    ['IMAGE/AVIF', 'avif', true, false],
    ['Image/WebP;Q=0.5', 'webp', false, true],
    ['image/webp ; q=0 , image/avif ;q=0.9', 'avif', true, false],
    ['  image/webp  ', 'webp', false, true],
    ['image/webp;charset=x;q=0', 'other', false, false],
    ['image/webp;q=0.5;ext=1', 'webp', false, true],
    ['image/avif;q=0;ext=1', 'other', false, false],
    // Listed twice: a refusal wins.
    ['image/avif,image/avif;q=0', 'other', false, false],
    ['image/avif;q=0,image/avif', 'other', false, false],
    // Malformed members are skipped, not guessed.
    ['image/avif;q=abc,image/webp', 'webp', false, true],
    ['image/avif;q=2', 'other', false, false],
    ['image/avif;q=-1', 'other', false, false],
    ['avif,webp', 'other', false, false],
    ['image/, /webp', 'other', false, false],
    ['image/avifx,image/webp2', 'other', false, false],
    ['text/html,application/xhtml+xml', 'other', false, false],
  ])('%j → %s', (accept, cls, avif, webp) => {
    expect(acceptClass(accept)).toBe(cls);
    expect(acceptedFormats(accept)).toEqual({ avif, webp });
  });
});

const ON: NegotiateOptions = { avif: true };
const OFF: NegotiateOptions = { avif: false };

const src = (format: string, hasAlpha = false, animated = false): SourceInfo => ({
  format,
  hasAlpha,
  animated,
});

describe('negotiateFormat', () => {
  type Row = [
    RequestedFormat | undefined,
    string | undefined,
    SourceInfo,
    NegotiateOptions,
    OutputFormat,
  ];
  it.each<Row>([
    // Explicit formats are returned as is, whatever Accept, source or options say.
    ['avif', CURL, src('jpeg'), OFF, 'avif'],
    ['avif', CHROME, src('gif', false, true), ON, 'avif'],
    ['webp', CURL, src('png', true), ON, 'webp'],
    ['jpeg', CHROME, src('png', true), ON, 'jpeg'],
    ['png', CHROME, src('jpeg'), ON, 'png'],
    // auto: AVIF, then WebP, then the source family.
    ['auto', CHROME, src('jpeg'), ON, 'avif'],
    ['auto', SAFARI_16, src('png', true), ON, 'avif'],
    ['auto', CHROME, src('jpeg'), OFF, 'webp'],
    ['auto', FIREFOX_OLD, src('jpeg'), ON, 'webp'],
    ['auto', CURL, src('jpeg'), ON, 'jpeg'],
    ['auto', CURL, src('png', true), ON, 'png'],
    ['auto', undefined, src('webp'), ON, 'webp'],
    ['auto', NO_AVIF, src('heif'), ON, 'avif'], // source family of HEIF is AVIF
    ['auto', 'image/webp,image/avif;q=0', src('jpeg'), ON, 'webp'],
    // Animated sources never become AVIF; WebP keeps the animation when accepted.
    ['auto', CHROME, src('gif', false, true), ON, 'webp'],
    ['auto', CHROME, src('webp', true, true), ON, 'webp'],
    ['auto', 'image/avif', src('gif', false, true), ON, 'png'],
    ['auto', CURL, src('gif', false, true), ON, 'png'],
    // AVIF accepted but WebP not listed: WebP is not inferred.
    ['auto', 'image/avif', src('jpeg'), OFF, 'jpeg'],
    ['auto', 'image/avif,image/*', src('png'), OFF, 'png'],
    // No fmt: the source family, Accept ignored.
    [undefined, CHROME, src('jpeg'), ON, 'jpeg'],
    [undefined, CHROME, src('png'), ON, 'png'],
    [undefined, CURL, src('webp'), ON, 'webp'],
    [undefined, CURL, src('avif'), ON, 'avif'],
    [undefined, CURL, src('heif'), ON, 'avif'],
    [undefined, CHROME, src('gif'), ON, 'png'],
    [undefined, CHROME, src('gif', false, true), ON, 'png'],
    [undefined, CURL, src('svg'), ON, 'png'],
    [undefined, CURL, src('tiff'), ON, 'jpeg'],
    [undefined, CURL, src('tiff', true), ON, 'png'],
    [undefined, CURL, src('jp2'), ON, 'jpeg'],
    [undefined, CURL, src('raw', true), ON, 'png'],
    [undefined, CURL, src('JPEG'), ON, 'jpeg'],
  ])('%s with %j from %j (%j) → %s', (requested, accept, source, options, output) => {
    expect(negotiateFormat(requested, accept, source, options)).toBe(output);
  });
});

describe('negotiates', () => {
  it.each<[RequestedFormat | undefined, boolean]>([
    ['auto', true],
    ['avif', false],
    ['webp', false],
    ['jpeg', false],
    ['png', false],
    [undefined, false],
  ])('%s → %s', (requested, expected) => {
    expect(negotiates(requested)).toBe(expected);
  });
});

describe('isAnimatableOutput', () => {
  it.each<[OutputFormat, boolean]>([
    ['webp', true],
    ['avif', false],
    ['jpeg', false],
    ['png', false],
  ])('%s → %s', (output, expected) => {
    expect(isAnimatableOutput(output)).toBe(expected);
  });
});
