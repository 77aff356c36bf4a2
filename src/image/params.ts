/**
 * Image parameters from the query string (DESIGN.md "Image parameters"): their types, the strict
 * parser that rejects anything unknown or out of range with a 400 naming the field, and the
 * canonical form used in cache keys and variant names. Pure: no I/O, no clock.
 *
 * Format negotiation lives in `negotiate.ts`, URL signing in `sign.ts`.
 */
import { clientError } from '../errors.js';
import { SIGNATURE_PARAM } from './sign.js';

export const FITS = ['cover', 'contain', 'fill', 'inside', 'outside'] as const;
export type Fit = (typeof FITS)[number];
export const FORMATS = ['auto', 'avif', 'webp', 'jpeg', 'png'] as const;
export type RequestedFormat = (typeof FORMATS)[number];
export type OutputFormat = Exclude<RequestedFormat, 'auto'>;

export interface ImageParams {
  w?: number;
  h?: number;
  dpr?: number;
  fit?: Fit;
  fmt?: RequestedFormat;
  q?: number;
}

/** The image parameter names, in the order they are validated. */
export const IMAGE_PARAM_NAMES = ['w', 'h', 'dpr', 'fit', 'fmt', 'q'] as const;
type ImageParamName = (typeof IMAGE_PARAM_NAMES)[number];

/** Image parameters plus `sig`, which is accepted beside them but never interpreted here. */
const ALLOWED_NAMES: readonly string[] = [...IMAGE_PARAM_NAMES, SIGNATURE_PARAM];

export const DEFAULT_MAX_OUTPUT_DIMENSION = 8192;
const DEFAULT_FIT: Fit = 'cover';
const MIN_DPR = 1;
const MAX_DPR = 4;

export interface ImageParamOptions {
  /**
   * Largest output width or height in pixels, checked on `w`/`h` and again after `dpr` is folded
   * in. Default 8192 (`DEFAULT_MAX_OUTPUT_DIMENSION`): bounds the memory and CPU one request can
   * make the origin spend, and keeps outputs inside what every encoder (WebP caps at 16383) writes.
   */
  maxOutputDimension: number;
  /**
   * When given and non-empty, the only `w` and `h` values accepted (as requested, before `dpr`,
   * which must then be a whole number). Default: any size. Lets an operator bound how many variants of one image can exist, so a crawler or
   * attacker cannot fill the cache and burn CPU with `w=1..8192`.
   */
  allowedWidths?: readonly number[];
}

export interface ImageRequest {
  /** Normalised: `dpr` folded into `w`/`h`, default or meaningless `fit` dropped. */
  params: ImageParams;
  /** `k=v` pairs of `params` sorted by key, joined with `&`; never empty. */
  canonical: string;
}

/**
 * Parses and normalises the image parameters of a request.
 *
 * Returns `undefined` when the query has none of `w, h, dpr, fit, fmt, q` (so `?v=3` cache
 * busters on plain files are left alone), or when nothing is left after normalisation (`dpr=2`
 * alone, `fit=contain` alone): serve the original. `sig` is always ignored here.
 *
 * Once any image parameter is present, every parameter is validated strictly and anything
 * unknown, repeated, empty or out of range throws `clientError('invalid_param', …)` (400) whose
 * `field` names the parameter.
 */
/** Names a publisher may have meant as an image parameter, and the one they meant. */
const LOOKALIKES: Readonly<Record<string, string>> = { width: 'w', height: 'h', format: 'fmt', quality: 'q', dppx: 'dpr' };

/**
 * Without any image parameter the query is left alone (cache busters such as `?v=3` are fine),
 * but a misspelt image parameter — `W=400`, `width=400`, `w[]=400` — is a 400 naming it rather
 * than silently serving the original.
 */
function refuseLookalikes(query: URLSearchParams): void {
  for (const name of query.keys()) {
    const base = name.replace(/\[\]$/, '');
    const lower = base.toLowerCase();
    const meant = (IMAGE_PARAM_NAMES as readonly string[]).includes(lower) ? lower : LOOKALIKES[lower];
    if (meant !== undefined && name !== meant) {
      throw invalid(name, `unknown parameter ${quote(name)}: did you mean ${quote(meant)}? Image parameters are ${IMAGE_PARAM_NAMES.join(', ')}`);
    }
  }
}

export function parseImageParams(
  query: URLSearchParams,
  options: ImageParamOptions,
): ImageRequest | undefined {
  if (!IMAGE_PARAM_NAMES.some((name) => query.has(name))) {
    refuseLookalikes(query);
    return undefined;
  }

  const raw = rawValues(query);
  const max = options.maxOutputDimension;
  const w = raw.w === undefined ? undefined : parseDimension('w', raw.w, max);
  const h = raw.h === undefined ? undefined : parseDimension('h', raw.h, max);
  const dprHundredths = raw.dpr === undefined ? undefined : parseDpr(raw.dpr);
  const fit = raw.fit === undefined ? undefined : parseEnum('fit', raw.fit, FITS);
  const fmt = raw.fmt === undefined ? undefined : parseEnum('fmt', raw.fmt, FORMATS);
  const q = raw.q === undefined ? undefined : parseQuality(raw.q);

  // With a list, every output size comes from it: `h` too, and `dpr` only in whole steps, or
  // `h=137` and `w=100&dpr=1.37` would make any size the list was there to forbid.
  const allowedWidths = options.allowedWidths ?? [];
  if (allowedWidths.length > 0) {
    if (w !== undefined && !allowedWidths.includes(w)) {
      throw invalid('w', `w must be one of ${allowedWidths.join(', ')}, got ${quote(raw.w ?? '')}`);
    }
    if (h !== undefined && !allowedWidths.includes(h)) {
      throw invalid('h', `h must be one of ${allowedWidths.join(', ')} (the allowed sizes), got ${quote(raw.h ?? '')}`);
    }
    if (dprHundredths !== undefined && dprHundredths % 100 !== 0) {
      throw invalid('dpr', `dpr must be a whole number (1 to ${MAX_DPR}) when sizes are restricted, got ${quote(raw.dpr ?? '')}`);
    }
  }

  const params: ImageParams = {};
  if (w !== undefined) params.w = foldDpr('w', w, dprHundredths, max);
  if (h !== undefined) params.h = foldDpr('h', h, dprHundredths, max);
  // With one dimension (or none) every fit gives the same output, so it must not split the cache.
  if (fit !== undefined && fit !== DEFAULT_FIT && w !== undefined && h !== undefined) {
    params.fit = fit;
  }
  if (fmt !== undefined) params.fmt = fmt;
  if (q !== undefined) params.q = q;

  const canonical = canonicalOf(params);
  return canonical === '' ? undefined : { params, canonical };
}

/**
 * The name of a stored variant: the canonical form of (normalised) `params` with `fmt` replaced by
 * the resolved output format, which is always present. `{w: 800, fmt: 'auto'}` + `webp` →
 * `fmt=webp&w=800`. Two requests that produce the same bytes share one name.
 */
export function variantName(params: ImageParams, output: OutputFormat): string {
  return canonicalOf({ ...params, fmt: output });
}

/** `k=v` pairs of the defined fields, sorted by key, joined with `&`. */
function canonicalOf(params: ImageParams): string {
  return Object.entries(params)
    .filter(([, value]) => value !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${String(value)}`)
    .join('&');
}

/** Checks names, repeats and emptiness; returns one raw string per image parameter present. */
function rawValues(query: URLSearchParams): Partial<Record<ImageParamName, string>> {
  for (const name of query.keys()) {
    if (!ALLOWED_NAMES.includes(name)) {
      throw invalid(
        name.slice(0, QUOTE_LIMIT),
        `unknown image parameter ${quote(name)}; allowed: ${ALLOWED_NAMES.join(', ')}`,
      );
    }
  }
  const raw: Partial<Record<ImageParamName, string>> = {};
  for (const name of IMAGE_PARAM_NAMES) {
    const values = query.getAll(name);
    if (values.length === 0) continue;
    if (values.length > 1) {
      throw invalid(name, `${name} must be given at most once, got ${values.length} values`);
    }
    const value = values[0] ?? '';
    if (value === '') throw invalid(name, `${name} must not be empty`);
    raw[name] = value;
  }
  return raw;
}

/** A plain decimal integer: digits only, so `+5`, `1e3`, `0x10`, `5.0`, ` 5` never pass. */
const INTEGER = /^[0-9]+$/;

function parseDimension(name: 'w' | 'h', value: string, max: number): number {
  const n = INTEGER.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= max)) {
    throw invalid(name, `${name} must be an integer from 1 to ${max}, got ${quote(value)}`);
  }
  return n;
}

function parseQuality(value: string): number {
  const n = INTEGER.test(value) ? Number(value) : NaN;
  if (!(n >= 1 && n <= 100)) {
    throw invalid('q', `q must be an integer from 1 to 100, got ${quote(value)}`);
  }
  return n;
}

/** A decimal with at most two places: `2`, `1.5`, `1.25`. */
const DPR = /^([0-9]+)(?:\.([0-9]{1,2}))?$/;

/**
 * Returns the device pixel ratio in hundredths (1.5 → 150) so folding it into a dimension is
 * integer arithmetic: `Math.round(w * dpr)` with no binary-fraction surprises at .5 boundaries.
 */
function parseDpr(value: string): number {
  const match = DPR.exec(value);
  const hundredths =
    match === null ? NaN : Number(match[1]) * 100 + Number((match[2] ?? '').padEnd(2, '0'));
  if (!(hundredths >= MIN_DPR * 100 && hundredths <= MAX_DPR * 100)) {
    throw invalid(
      'dpr',
      `dpr must be a number from ${MIN_DPR} to ${MAX_DPR} with at most 2 decimal places, ` +
        `got ${quote(value)}`,
    );
  }
  return hundredths;
}

/** `Math.round(size * dpr)`, refused (field `dpr`) when it exceeds the output bound. */
function foldDpr(
  name: 'w' | 'h',
  size: number,
  dprHundredths: number | undefined,
  max: number,
): number {
  if (dprHundredths === undefined) return size;
  const folded = Math.round((size * dprHundredths) / 100);
  if (folded > max) {
    const product = `${size} × ${dprHundredths / 100} = ${folded}`;
    throw invalid('dpr', `${name} × dpr must be at most ${max} pixels, got ${product}`);
  }
  return folded;
}

function parseEnum<T extends string>(name: string, value: string, allowed: readonly T[]): T {
  const found = allowed.find((candidate) => candidate === value);
  if (found === undefined) {
    throw invalid(name, `${name} must be one of ${allowed.join(', ')}, got ${quote(value)}`);
  }
  return found;
}

/** User-supplied text echoed in errors is cut to this many characters, so bodies stay small. */
const QUOTE_LIMIT = 64;

/** Quotes a user-supplied value for a message. */
function quote(value: string): string {
  return JSON.stringify(value.length > QUOTE_LIMIT ? `${value.slice(0, QUOTE_LIMIT)}…` : value);
}

function invalid(field: string, message: string) {
  return clientError('invalid_param', message, { field });
}
