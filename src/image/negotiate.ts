/**
 * Output-format negotiation for image variants: reads the `Accept` request header (RFC 9110
 * §12.5.1) and the source image's format to pick AVIF, WebP, JPEG or PNG. Pure: no I/O.
 *
 * Only explicit `image/avif` / `image/webp` ranges count. Wildcards (`image/*` and the any-type
 * range) never imply them: browsers that decode AVIF or WebP list them by name, and old clients and
 * curl send the any-type range while decoding neither.
 */
import type { OutputFormat, RequestedFormat } from './params.js';

/** The coarse class of an `Accept` header, for normalising the cache key of `fmt=auto`. */
export type AcceptClass = 'avif' | 'webp' | 'other';

/** Which modern formats an `Accept` header names as acceptable. */
export interface AcceptedFormats {
  avif: boolean;
  webp: boolean;
}

/**
 * Reads `Accept` into the two flags negotiation needs. A format is acceptable when it is listed
 * by its exact media type with a weight above zero (`q=0` means "not acceptable", RFC 9110
 * §12.4.2). Listed more than once, any `q=0` wins: never send what the client refused. Media
 * types and parameter names are case-insensitive; malformed members are skipped.
 */
export function acceptedFormats(accept: string | undefined | null): AcceptedFormats {
  const weights = new Map<string, number[]>();
  for (const member of (accept ?? '').split(',')) {
    const range = parseMediaRange(member);
    if (range === undefined) continue;
    const list = weights.get(range.type) ?? [];
    list.push(range.q);
    weights.set(range.type, list);
  }
  const acceptable = (type: string): boolean => {
    const list = weights.get(type);
    return list !== undefined && list.every((q) => q > 0);
  };
  return { avif: acceptable('image/avif'), webp: acceptable('image/webp') };
}

/** `avif` if `image/avif` is acceptable, else `webp` if `image/webp` is, else `other`. */
export function acceptClass(accept: string | undefined | null): AcceptClass {
  const formats = acceptedFormats(accept);
  if (formats.avif) return 'avif';
  if (formats.webp) return 'webp';
  return 'other';
}

/** What negotiation needs to know about the source image (from sharp's metadata). */
export interface SourceInfo {
  /** sharp's format name: jpeg, png, webp, gif, avif, heif, svg, tiff … */
  format: string;
  hasAlpha: boolean;
  /** More than one frame (animated GIF or WebP). */
  animated: boolean;
}

export interface NegotiateOptions {
  /**
   * Allow AVIF as the answer to `fmt=auto`. Default true. Operators may turn it off because AVIF
   * encoding is the CPU hot spot of variant generation (several times slower than WebP); explicit
   * `fmt=avif` is still honoured.
   */
  avif: boolean;
}

/** The default negotiation options. */
export const DEFAULT_NEGOTIATE_OPTIONS: Readonly<NegotiateOptions> = Object.freeze({ avif: true });

/**
 * Picks the output format of a variant.
 *
 * - `avif`, `webp`, `jpeg`, `png`: returned as is (the publisher chose).
 * - `auto`: AVIF when the client accepts it, `options.avif` is on and the source is not animated
 *   (sharp cannot write animated AVIF); else WebP when the client accepts it (WebP also keeps the
 *   animation); else the source family. Each flag is read from the header, never inferred from
 *   the other.
 * - absent: the source family, whatever `Accept` says (the response does not vary).
 */
export function negotiateFormat(
  requested: RequestedFormat | undefined,
  accept: string | undefined | null,
  source: SourceInfo,
  options: NegotiateOptions,
): OutputFormat {
  if (requested === undefined) return sourceFamily(source);
  if (requested !== 'auto') return requested;
  const formats = acceptedFormats(accept);
  if (formats.avif && options.avif && !source.animated) return 'avif';
  if (formats.webp) return 'webp';
  return sourceFamily(source);
}

/**
 * True iff the response depends on `Accept` (`fmt=auto`), so it must carry `Vary: Accept` and
 * its cache key must include the accept class (RFC 9110 §12.5.5).
 */
export function negotiates(requested: RequestedFormat | undefined): boolean {
  return requested === 'auto';
}

/**
 * True iff sharp can write an animated image in this output format. Among anycdn's outputs only
 * WebP is: JPEG and PNG have no frames, and sharp (libheif) writes AVIF as a single still image.
 * Animated sources converted to any other format keep only their first frame.
 */
export function isAnimatableOutput(output: OutputFormat): boolean {
  return output === 'webp';
}

/**
 * The output format closest to the source: JPEG, PNG, WebP and AVIF/HEIF stay in their family;
 * formats we do not write (GIF, SVG, TIFF, …) become PNG when they may carry transparency or flat
 * artwork (alpha, SVG, GIF), else JPEG.
 */
function sourceFamily(source: SourceInfo): OutputFormat {
  const format = source.format.toLowerCase();
  switch (format) {
    case 'jpeg':
    case 'png':
    case 'webp':
      return format;
    case 'avif':
    case 'heif':
      return 'avif';
    default:
      return source.hasAlpha || format === 'svg' || format === 'gif' ? 'png' : 'jpeg';
  }
}

interface MediaRange {
  /** `type/subtype`, lower-cased. */
  type: string;
  /** Weight from 0 to 1; 1 when absent. */
  q: number;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9a-z-]+$/;
/** RFC 9110 §12.4.2 qvalue, read leniently beyond three decimals. */
const QVALUE = /^(?:0(?:\.[0-9]*)?|1(?:\.0*)?)$/;

/** Parses one member of `Accept`: `type/subtype *( OWS ";" OWS parameter )`. */
function parseMediaRange(member: string): MediaRange | undefined {
  const [head = '', ...params] = member.split(';');
  const type = head.trim().toLowerCase();
  const slash = type.indexOf('/');
  if (slash < 0 || !TOKEN.test(type.slice(0, slash)) || !TOKEN.test(type.slice(slash + 1))) {
    return undefined;
  }
  let q = 1;
  for (const param of params) {
    const eq = param.indexOf('=');
    if (eq < 0) continue;
    if (param.slice(0, eq).trim().toLowerCase() !== 'q') continue;
    const value = param.slice(eq + 1).trim();
    if (!QVALUE.test(value)) return undefined;
    q = Number(value);
    break; // RFC 9110 §12.5.1: parameters after the weight are accept extensions, not ours
  }
  return { type, q };
}
