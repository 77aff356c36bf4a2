/**
 * Content-type sniffing: decide what a stored file is from its first bytes, never from what the
 * publisher's client claimed. Binary formats are recognised by their magic numbers; SVG by its
 * first element; other text by its file extension. An extension can never turn text into an image
 * type (a text file named `x.jpg` is served as text/plain), and unknown binary data is
 * `application/octet-stream`, so a browser is never invited to render something it should not.
 */

/**
 * How many leading bytes callers should pass: enough for magic numbers and an SVG prolog. Editors
 * write long ones (Illustrator: a generator comment and a doctype declaring a dozen entities), and
 * an SVG whose `<svg` falls past this is stored as text, so 16 KiB rather than a page.
 */
export const SNIFF_BYTES = 16 * 1024;

const TEXT_PLAIN = 'text/plain; charset=utf-8';
const OCTET_STREAM = 'application/octet-stream';

/** Text types chosen by extension, only for content that looks like text. */
const TEXT_BY_EXTENSION: Readonly<Record<string, string>> = {
  css: 'text/css; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  mjs: 'text/javascript; charset=utf-8',
  json: 'application/json',
  map: 'application/json',
  webmanifest: 'application/manifest+json',
  html: 'text/html; charset=utf-8',
  htm: 'text/html; charset=utf-8',
  txt: TEXT_PLAIN,
  xml: 'application/xml',
  md: 'text/markdown; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

const RASTER_TYPES = new Set([
  'image/jpeg',
  'image/png',
  'image/gif',
  'image/webp',
  'image/avif',
  'image/heif',
  'image/tiff',
  'image/bmp',
  'image/x-icon',
]);

/**
 * The content type of a file from its first bytes (pass up to SNIFF_BYTES) and its path (only
 * the extension is used, and only for text).
 */
export function sniffContentType(head: Uint8Array, path: string): string {
  const magic = sniffMagic(head);
  if (magic !== undefined) return magic;
  const text = decodeText(head);
  if (text === undefined) return OCTET_STREAM;
  if (startsWithSvgElement(text)) return 'image/svg+xml';
  return TEXT_BY_EXTENSION[extensionOf(path)] ?? TEXT_PLAIN;
}

/** Image types that are pixels (everything image/* but SVG). Whether sharp can decode one is the transformer's question. */
export function isRasterImageType(contentType: string): boolean {
  return RASTER_TYPES.has(essence(contentType));
}

/**
 * XML of any kind: SVG, `application/xml`, `text/xml` and every `+xml` type. A browser that opens
 * an XML document renders it by its root element's namespace, so SVG or XHTML written with a
 * namespace prefix (`<x:svg xmlns:x="http://www.w3.org/2000/svg">`) runs scripts whatever the
 * file is called: every XML type needs the policy that keeps SVG inert.
 */
export function isXmlType(contentType: string): boolean {
  const type = essence(contentType);
  return type === 'application/xml' || type === 'text/xml' || type.endsWith('+xml');
}

/** Any image type, raster or SVG. */
export function isImageType(contentType: string): boolean {
  return essence(contentType).startsWith('image/');
}

/** The media type without parameters, lower-cased: `Text/CSS; charset=x` → `text/css`. */
function essence(contentType: string): string {
  return (contentType.split(';', 1)[0] ?? '').trim().toLowerCase();
}

function extensionOf(path: string): string {
  const name = path.slice(path.lastIndexOf('/') + 1);
  const dot = name.lastIndexOf('.');
  return dot <= 0 ? '' : name.slice(dot + 1).toLowerCase();
}

function startsWith(head: Uint8Array, bytes: readonly number[], offset = 0): boolean {
  if (head.length < offset + bytes.length) return false;
  return bytes.every((b, i) => head[offset + i] === b);
}

function ascii(head: Uint8Array, start: number, end: number): string {
  return String.fromCharCode(...head.subarray(start, end));
}

function sniffMagic(head: Uint8Array): string | undefined {
  if (startsWith(head, [0xff, 0xd8, 0xff])) return 'image/jpeg';
  if (startsWith(head, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return 'image/png';
  if (ascii(head, 0, 6) === 'GIF87a' || ascii(head, 0, 6) === 'GIF89a') return 'image/gif';
  if (ascii(head, 0, 4) === 'RIFF' && ascii(head, 8, 12) === 'WEBP') return 'image/webp';
  if (ascii(head, 4, 8) === 'ftyp') return sniffIsoBmff(head);
  if (startsWith(head, [0x49, 0x49, 0x2a, 0x00]) || startsWith(head, [0x4d, 0x4d, 0x00, 0x2a])) return 'image/tiff';
  if (isBmp(head)) return 'image/bmp';
  // ICONDIR: reserved 0, type 1 (icon), at least one image.
  if (startsWith(head, [0x00, 0x00, 0x01, 0x00]) && head.length >= 6 && (head[4]! | head[5]!) !== 0) return 'image/x-icon';
  if (ascii(head, 0, 5) === '%PDF-') return 'application/pdf';
  if (startsWith(head, [0x1f, 0x8b, 0x08])) return 'application/gzip';
  if (ascii(head, 0, 4) === 'PK\u0003\u0004' || ascii(head, 0, 4) === 'PK\u0005\u0006') return 'application/zip';
  if (ascii(head, 0, 4) === 'wOFF') return 'font/woff';
  if (ascii(head, 0, 4) === 'wOF2') return 'font/woff2';
  // OpenType: 'OTTO' then a table count far below 256 (a high byte of 0 also keeps text out).
  if (ascii(head, 0, 4) === 'OTTO' && head[4] === 0) return 'font/otf';
  if (startsWith(head, [0x00, 0x01, 0x00, 0x00, 0x00])) return 'font/ttf';
  if (startsWith(head, [0x1a, 0x45, 0xdf, 0xa3])) return sniffEbml(head);
  return undefined;
}

const AVIF_BRANDS = new Set(['avif', 'avis']);
const HEIF_BRANDS = new Set(['heic', 'heix', 'heim', 'heis', 'hevc', 'hevx', 'mif1', 'msf1']);
const MP4_BRANDS = new Set(['isom', 'iso2', 'iso4', 'iso5', 'iso6', 'mp41', 'mp42', 'avc1', 'dash', 'M4V ', 'mmp4']);

/** ISO-BMFF (`ftyp` box): the major brand decides, else the compatible brands (AVIF lists `mif1` too, so avif wins). */
function sniffIsoBmff(head: Uint8Array): string {
  const boxSize = ((head[0]! << 24) >>> 0) + (head[1]! << 16) + (head[2]! << 8) + head[3]!;
  const major = ascii(head, 8, 12);
  const brands = [major];
  for (let at = 16; at + 4 <= Math.min(boxSize, head.length); at += 4) brands.push(ascii(head, at, at + 4));
  if (AVIF_BRANDS.has(major)) return 'image/avif';
  if (HEIF_BRANDS.has(major) && major !== 'mif1' && major !== 'msf1') return 'image/heif';
  if (brands.some((b) => AVIF_BRANDS.has(b))) return 'image/avif';
  if (brands.some((b) => HEIF_BRANDS.has(b))) return 'image/heif';
  if (major === 'qt  ') return 'video/quicktime';
  if (major === 'M4A ') return 'audio/mp4';
  if (brands.some((b) => MP4_BRANDS.has(b))) return 'video/mp4';
  return OCTET_STREAM;
}

/** EBML header: WebM declares its DocType near the start; anything else is Matroska. */
function sniffEbml(head: Uint8Array): string {
  const prefix = ascii(head, 0, Math.min(head.length, 64));
  return prefix.includes('webm') ? 'video/webm' : 'video/x-matroska';
}

/** `BM`, the reserved words zero and a known DIB header size: two letters alone would catch text. */
function isBmp(head: Uint8Array): boolean {
  if (head.length < 18 || head[0] !== 0x42 || head[1] !== 0x4d) return false;
  if (head[6] !== 0 || head[7] !== 0 || head[8] !== 0 || head[9] !== 0) return false;
  const dibSize = head[14]! + (head[15]! << 8) + (head[16]! << 16) + (head[17]! << 24);
  return [12, 40, 52, 56, 64, 108, 124].includes(dibSize);
}

/**
 * The head as text if it looks like text: valid UTF-8 and no NUL. A multi-byte character cut at
 * the end of the head is tolerated (streaming decode), since the head is usually a prefix.
 */
function decodeText(head: Uint8Array): string | undefined {
  if (head.includes(0)) return undefined;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(head, { stream: true });
  } catch {
    return undefined;
  }
}

/**
 * Whether the first element of an XML-ish text is `<svg`, after an optional BOM, XML declaration,
 * processing instructions, comments and a doctype (with or without an internal subset).
 */
function startsWithSvgElement(text: string): boolean {
  let at = text.startsWith('\ufeff') ? 1 : 0;
  for (;;) {
    while (at < text.length && /\s/.test(text[at]!)) at++;
    if (text.startsWith('<?', at)) {
      const end = text.indexOf('?>', at + 2);
      if (end < 0) return false;
      at = end + 2;
    } else if (text.startsWith('<!--', at)) {
      const end = text.indexOf('-->', at + 4);
      if (end < 0) return false;
      at = end + 3;
    } else if (text.slice(at, at + 9).toUpperCase() === '<!DOCTYPE') {
      const end = doctypeEnd(text, at + 9);
      if (end < 0) return false;
      at = end + 1;
    } else {
      return /^<svg[\s/>]/.test(text.slice(at, at + 5));
    }
  }
}

/** Index of the `>` closing a doctype, skipping a bracketed internal subset; -1 if not in the text. */
function doctypeEnd(text: string, from: number): number {
  let depth = 0;
  for (let i = from; i < text.length; i++) {
    const c = text[i];
    if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (c === '>' && depth <= 0) return i;
  }
  return -1;
}
