/**
 * Reading a request head for the quick front (quick-front.ts): one pass over the bytes that checks
 * the request line and every field line, and notes where each field's name and value lie, without
 * making a string for any of them. The strings come later and only as asked for: the target, the
 * few fields a responder reads by name (QuickRequest.field), the whole list only for the access
 * log or a responder that wants it (rawHeaders, headers).
 *
 * Why: a browser's request head has 10–20 fields, of which a cache hit reads two or three (Host,
 * If-None-Match, and the absence of a few others). Matching the lines with a regular expression,
 * then cutting a string for every name and value and lower-casing every name (twice, with the
 * edge's fastFields), cost ~40% more CPU for a 13-field head than this pass (a micro-benchmark of
 * both with the edge's field checks, alternating in one process: ~4.3 against ~2.7 µs on a busy
 * two-core VM) and no less for a head of Host alone.
 *
 * What is read is deliberately narrow (see quick-front.ts): anything else is left to Node.
 */
import type { QuickRequest } from './quick-front.js';

/** Node's default maximum request head (`--max-http-header-size`). */
const MAX_HEAD_BYTES = 16 * 1024;
/**
 * Fields in a head the front reads; more go to Node. Browsers send ~10–20; the bound keeps the
 * duplicate check (quadratic, though by hash) from costing more than Node's own parse for a head
 * of 16 KiB of tiny fields.
 */
const MAX_FIELDS = 64;
const END_OF_HEAD = Buffer.from('\r\n\r\n');
const CR = 0x0d;
const LF = 0x0a;
const COLON = 0x3a;

/** Per byte: 1 for a token character (RFC 9110 §5.6.2 tchar). */
const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ") TCHAR[c.charCodeAt(0)] = 1;
/** Per byte: the byte in lower case (A–Z only). */
const LOWER = new Uint8Array(256);
for (let c = 0; c < 256; c++) LOWER[c] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;

/** Per byte: 1 for a byte a field value may hold: visible ASCII, space or tab (no obs-text, no control bytes). */
const VALUE = new Uint8Array(256);
for (let c = 0x20; c <= 0x7e; c++) VALUE[c] = 1;
VALUE[0x09] = 1;

/** A space or a horizontal tab (RFC 9110 §5.6.3 OWS). */
function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** The hash fields are compared by: of the name in lower case, so a name and its hash match whatever its case. */
export function nameHash(name: string): number {
  let h = 0;
  for (let i = 0; i < name.length; i++) h = (Math.imul(h, 31) + LOWER[name.charCodeAt(i) & 0xff]!) | 0;
  return h;
}

/**
 * Fields that make a request the front leaves to Node: a body, a protocol change, an expectation,
 * and Proxy-Connection, which Node's parser reads as Connection.
 */
const NODE_FIELDS = ['content-length', 'transfer-encoding', 'expect', 'upgrade', 'proxy-connection'].map((name) => ({ name, hash: nameHash(name) }));
const HOST = nameHash('host');
const CONNECTION = nameHash('connection');

/** Slots per field in a head's table: name start, name end (its colon), value start, value end, name hash (nameHash). */
const SLOTS = 5;

export interface ReadHead {
  request: QuickRequest;
  /** Offset just past the head. */
  end: number;
  /** The client asked for the connection to close after this answer. */
  close: boolean;
}

/**
 * The request head starting at `start`, or undefined when it is not wholly there or not the front's
 * to answer: the request line `GET` or `HEAD`, a target of visible ASCII starting with `/`,
 * ` HTTP/1.1`, then field lines, each a token, a colon, and visible ASCII, spaces or tabs (no
 * obs-fold, no obs-text), each name once; none of NODE_FIELDS; Connection only `keep-alive` or
 * `close`; a Host; at most MAX_FIELDS fields and MAX_HEAD_BYTES bytes.
 *
 * `bytes` is kept by the request for the strings it makes later: a chunk a socket emitted is the
 * listener's to keep (Node reuses a read buffer only when a socket is made with `onread`).
 */
export function readHead(bytes: Buffer, start: number): ReadHead | undefined {
  const blank = bytes.indexOf(END_OF_HEAD, start);
  if (blank < 0 || blank + 4 - start > MAX_HEAD_BYTES) return undefined;
  // Every line, the request line included, ends with a CRLF at or before `stop`.
  const stop = blank + 2;
  let method: 'GET' | 'HEAD';
  let target: number;
  if (bytes[start] === 0x47 && bytes[start + 1] === 0x45 && bytes[start + 2] === 0x54 && bytes[start + 3] === 0x20 && bytes[start + 4] === 0x2f) {
    method = 'GET';
    target = start + 4;
  } else if (bytes[start] === 0x48 && bytes[start + 1] === 0x45 && bytes[start + 2] === 0x41 && bytes[start + 3] === 0x44 && bytes[start + 4] === 0x20 && bytes[start + 5] === 0x2f) {
    method = 'HEAD';
    target = start + 5;
  } else return undefined;
  let at = target;
  for (let c = bytes[at]!; c > 0x20 && c < 0x7f; c = bytes[++at]!);
  // ` HTTP/1.1` CR LF
  if (at + 11 > stop || !spells(bytes, at, ' HTTP/1.1\r\n')) return undefined;
  const url = bytes.toString('latin1', target, at);
  at += 11;
  const table: number[] = [];
  let close = false;
  let host = false;
  while (at < stop) {
    if (table.length === MAX_FIELDS * SLOTS) return undefined;
    const nameStart = at;
    let h = 0;
    for (let c = bytes[at]!; TCHAR[c] === 1; c = bytes[++at]!) h = (Math.imul(h, 31) + LOWER[c]!) | 0;
    const nameEnd = at;
    if (nameEnd === nameStart || bytes[at] !== COLON) return undefined;
    at++;
    while (isBlank(bytes[at]!)) at++;
    const from = at;
    while (VALUE[bytes[at]!] === 1) at++;
    if (bytes[at] !== CR || bytes[at + 1] !== LF) return undefined;
    let to = at;
    while (to > from && isBlank(bytes[to - 1]!)) to--;
    at += 2;
    // Each name once: a list split over lines, or a second Host, is Node's to combine or refuse.
    for (let i = 4; i < table.length; i += SLOTS) if (table[i] === h && sameName(bytes, table[i - 4]!, table[i - 3]!, nameStart, nameEnd)) return undefined;
    if (h === HOST && isName(bytes, nameStart, nameEnd, 'host')) host = true;
    else if (h === CONNECTION && isName(bytes, nameStart, nameEnd, 'connection')) {
      if (isName(bytes, from, to, 'close')) close = true;
      else if (!isName(bytes, from, to, 'keep-alive')) return undefined;
    } else for (const node of NODE_FIELDS) if (h === node.hash && isName(bytes, nameStart, nameEnd, node.name)) return undefined;
    table.push(nameStart, nameEnd, from, to, h);
  }
  // RFC 9112 §3.2: an HTTP/1.1 request without Host is a 400, Node's to send.
  if (!host) return undefined;
  return { request: new FrontRequest(method, url, bytes, table), end: blank + 4, close };
}

/** Whether the bytes at `at` are `ascii`, exactly. */
function spells(bytes: Buffer, at: number, ascii: string): boolean {
  for (let i = 0; i < ascii.length; i++) if (bytes[at + i] !== ascii.charCodeAt(i)) return false;
  return true;
}

/** Whether bytes [a, aEnd) and [b, bEnd) are the same name, whatever their case. */
function sameName(bytes: Buffer, a: number, aEnd: number, b: number, bEnd: number): boolean {
  if (aEnd - a !== bEnd - b) return false;
  for (let i = 0; i < aEnd - a; i++) if (LOWER[bytes[a + i]!] !== LOWER[bytes[b + i]!]) return false;
  return true;
}

/** Whether bytes [from, to) spell `lower` (lower-case ASCII), whatever their case. */
function isName(bytes: Buffer, from: number, to: number, lower: string): boolean {
  if (to - from !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) if (LOWER[bytes[from + i]!] !== lower.charCodeAt(i)) return false;
  return true;
}

/** A set of field names prepared for QuickRequest.hasAny: lower-case, hashed once. */
export interface FieldNames {
  readonly names: readonly string[];
  readonly hashes: Int32Array;
}

export function fieldNames(names: readonly string[]): FieldNames {
  const lower = names.map((name) => name.toLowerCase());
  return { names: lower, hashes: Int32Array.from(lower, nameHash) };
}

/** nameHash of the names responders ask for (a few constants; bounded all the same). */
const NAME_HASHES = new Map<string, number>();

/** A request as readHead found it: strings made on demand from the head's bytes. */
class FrontRequest implements QuickRequest {
  private raw: string[] | undefined;
  private record: Record<string, string> | undefined;

  constructor(
    readonly method: 'GET' | 'HEAD',
    readonly url: string,
    private readonly bytes: Buffer,
    /** SLOTS numbers per field, in turn. */
    private readonly table: number[],
  ) {}

  field(name: string): string | undefined {
    let h = NAME_HASHES.get(name);
    if (h === undefined) {
      h = nameHash(name);
      if (NAME_HASHES.size < 256) NAME_HASHES.set(name, h);
    }
    const { table, bytes } = this;
    for (let i = 4; i < table.length; i += SLOTS) {
      if (table[i] === h && isName(bytes, table[i - 4]!, table[i - 3]!, name)) return bytes.toString('latin1', table[i - 2]!, table[i - 1]!);
    }
    return undefined;
  }

  hasAny(names: FieldNames): boolean {
    const { table, bytes } = this;
    const { hashes } = names;
    for (let i = 4; i < table.length; i += SLOTS) {
      const h = table[i]!;
      for (let j = 0; j < hashes.length; j++) if (hashes[j] === h && isName(bytes, table[i - 4]!, table[i - 3]!, names.names[j]!)) return true;
    }
    return false;
  }

  get rawHeaders(): string[] {
    if (this.raw === undefined) {
      const raw: string[] = [];
      const { table, bytes } = this;
      for (let i = 0; i < table.length; i += SLOTS) raw.push(bytes.toString('latin1', table[i]!, table[i + 1]!), bytes.toString('latin1', table[i + 2]!, table[i + 3]!));
      this.raw = raw;
    }
    return this.raw;
  }

  get headers(): Record<string, string> {
    if (this.record === undefined) {
      const raw = this.rawHeaders;
      const record: Record<string, string> = {};
      for (let i = 0; i < raw.length; i += 2) record[raw[i]!.toLowerCase()] = raw[i + 1]!;
      this.record = record;
    }
    return this.record;
  }
}
