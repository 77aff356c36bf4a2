/**
 * Vary (RFC 9110 §12.5.5, RFC 9111 §4.1): which request fields select among stored responses, and
 * the secondary cache key built from them. Values are normalised before they enter the key, as
 * §4.1 allows, so that requests which would get the same response share one stored copy:
 * `Accept` becomes its image accept class, `Accept-Encoding` the coding we would pick, and any
 * other field its value with whitespace collapsed.
 */
import { acceptClass } from '../image/negotiate.js';
import type { HeaderGetter } from './headers.js';

/** Maps a request field value (`undefined` when absent) to the value that enters the key. */
export type VaryNormalizer = (value: string | undefined) => string | undefined;

/**
 * The fields named by Vary, lower-cased, de-duplicated and sorted; `'*'` when any member is `*`
 * (RFC 9110 §12.5.5: the response varies on something outside the request fields). Multiple Vary
 * lines arrive combined with commas (RFC 9110 §5.3).
 */
export function varyFields(headers: HeaderGetter): string[] | '*' {
  const value = headers.get('vary');
  if (value === null || value === undefined) return [];
  const fields = new Set<string>();
  for (const member of value.split(',')) {
    const name = member.trim().toLowerCase();
    if (name === '') continue; // RFC 9110 §5.6.1: empty list elements
    if (name === '*') return '*';
    fields.add(name);
  }
  return [...fields].sort();
}

/**
 * Accept-Encoding normalised to the coding a compressing cache would choose (RFC 9110 §12.5.3):
 * `br` if acceptable, else `gzip` (or its alias `x-gzip`), else `identity`. A coding is acceptable
 * when listed, or covered by `*`, with q > 0; a listed `q=0` refuses it even if `*` allows it.
 */
export function acceptEncodingClass(value: string | undefined): 'br' | 'gzip' | 'identity' {
  const weights = new Map<string, number>();
  for (const member of (value ?? '').split(',')) {
    const [rawName, ...params] = member.split(';');
    const name = rawName!.trim().toLowerCase();
    if (name === '') continue;
    let q = 1;
    for (const param of params) {
      const m = /^\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*$/i.exec(param);
      if (m) q = Number(m[1]);
    }
    const key = name === 'x-gzip' ? 'gzip' : name;
    weights.set(key, Math.min(weights.get(key) ?? Infinity, q));
  }
  const acceptable = (coding: string): boolean => (weights.get(coding) ?? weights.get('*') ?? 0) > 0;
  if (acceptable('br')) return 'br';
  if (acceptable('gzip')) return 'gzip';
  return 'identity';
}

/** Trims and collapses runs of whitespace (RFC 9111 §4.1 allows normalising whitespace). */
export function collapseWhitespace(value: string | undefined): string | undefined {
  return value?.trim().replace(/[ \t]+/g, ' ');
}

/** The built-in normalisers; `accept` keys on the image accept class (avif / webp / other). */
export const DEFAULT_VARY_NORMALIZERS: Readonly<Record<string, VaryNormalizer>> = Object.freeze({
  accept: (value) => acceptClass(value),
  'accept-encoding': (value) => acceptEncodingClass(value),
});

/**
 * The secondary key of a request for a response that varies on `fields` (RFC 9111 §4.1):
 * `name=value` pairs in field order, joined with `&`, values percent-encoded. An absent field is
 * written as the bare name, so it matches only another request where it is absent, unless its
 * normaliser maps absence to a value (absent Accept is the class `other`). `fields` should come
 * from `varyFields` (lower-cased and sorted); `'*'` has no key and is rejected by storability.
 *
 * @param normalizers Extra or replacing normalisers by lower-case field name; merged over
 *   DEFAULT_VARY_NORMALIZERS. Fields without one use `collapseWhitespace`.
 */
export function varySecondaryKey(
  fields: readonly string[],
  reqHeaders: HeaderGetter,
  normalizers: Readonly<Record<string, VaryNormalizer>> = {},
): string {
  return fields
    .map((field) => {
      const name = field.toLowerCase();
      const raw = reqHeaders.get(name) ?? undefined;
      const normalize = normalizers[name] ?? DEFAULT_VARY_NORMALIZERS[name] ?? collapseWhitespace;
      const value = normalize(raw);
      return value === undefined ? name : `${name}=${encodeURIComponent(value)}`;
    })
    .join('&');
}
