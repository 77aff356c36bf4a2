/**
 * The part of Structured Field Values (RFC 9651, which obsoletes RFC 8941) that anycdn needs:
 * parsing a Dictionary (CDN-Cache-Control is one, RFC 9213 §2.1) and a List (Cache-Groups is one,
 * RFC 9875 §2), and serialising tokens and strings (Cache-Status is a List, RFC 9211 §2). Parsing follows RFC 9651 §4.2 and fails on any error, as
 * the algorithm requires; callers decide what a failure means for their field.
 *
 * Hand-written rather than the `structured-headers` package: that package parses an Integer and a
 * Decimal into the same JavaScript number (`max-age=10.0` reads as the Integer 10, which RFC 9213
 * §2.1 says is the wrong type), and (2.1.0) fails any Date that is not the last thing in the field
 * (`a=@1, b=1`). It is the test oracle instead: test/unit/http/structured-fields.test.ts checks
 * this parser against it on generated inputs.
 */

/**
 * A bare item (RFC 9651 §3.3), or an inner list of them. Byte sequences keep their base64 text;
 * a Date is seconds since the epoch.
 */
export type SfBareItem =
  | { type: 'integer'; value: number }
  | { type: 'decimal'; value: number }
  | { type: 'string'; value: string }
  | { type: 'token'; value: string }
  | { type: 'binary'; value: string }
  | { type: 'boolean'; value: boolean }
  | { type: 'date'; value: number }
  | { type: 'display-string'; value: string }
  | { type: 'inner-list'; value: SfBareItem[] };

/** A dictionary member; parameters are parsed for validity but not kept (no caller uses them). */
export type SfDictionary = Map<string, SfBareItem>;

class SfParseError extends Error {}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const KEY_START = /[a-z*]/;
const KEY_CHAR = /[a-z0-9_\-.*]/;

class Parser {
  pos = 0;
  constructor(readonly s: string) {}

  peek(): string | undefined {
    return this.s[this.pos];
  }
  fail(): never {
    throw new SfParseError(`structured field parse error at ${this.pos}`);
  }
  skipSp(): void {
    while (this.peek() === ' ') this.pos += 1;
  }
  skipOws(): void {
    while (this.peek() === ' ' || this.peek() === '\t') this.pos += 1;
  }

  // RFC 9651 §4.2.3.3
  key(): string {
    const first = this.peek();
    if (first === undefined || !KEY_START.test(first)) this.fail();
    const start = this.pos;
    while (this.peek() !== undefined && KEY_CHAR.test(this.peek()!)) this.pos += 1;
    return this.s.slice(start, this.pos);
  }

  // RFC 9651 §4.2.3.1
  bareItem(): SfBareItem {
    const c = this.peek();
    if (c === undefined) this.fail();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    if (c === '"') return { type: 'string', value: this.string() };
    if (c === ':') return { type: 'binary', value: this.binary() };
    if (c === '?') return { type: 'boolean', value: this.boolean() };
    if (c === '@') return { type: 'date', value: this.date() };
    if (c === '%') return { type: 'display-string', value: this.displayString() };
    if (c === '*' || /[A-Za-z]/.test(c)) return { type: 'token', value: this.token() };
    return this.fail();
  }

  // RFC 9651 §4.2.9
  date(): number {
    this.pos += 1;
    const n = this.number();
    if (n.type !== 'integer') this.fail();
    return n.value as number;
  }

  // RFC 9651 §4.2.10: percent-encoded UTF-8 between %" and ".
  displayString(): string {
    if (this.s[this.pos + 1] !== '"') this.fail();
    this.pos += 2;
    const bytes: number[] = [];
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail();
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) this.fail();
      this.pos += 1;
      if (c === '%') {
        const hex = this.s.slice(this.pos, this.pos + 2);
        if (!/^[0-9a-f]{2}$/.test(hex)) this.fail();
        bytes.push(parseInt(hex, 16));
        this.pos += 2;
      } else if (c === '"') {
        try {
          return new TextDecoder('utf-8', { fatal: true }).decode(new Uint8Array(bytes));
        } catch {
          return this.fail();
        }
      } else {
        bytes.push(code);
      }
    }
  }

  // RFC 9651 §4.2.4
  number(): SfBareItem {
    const m = /^(-?)(\d{1,15})(\.\d{1,3})?/.exec(this.s.slice(this.pos));
    if (!m) this.fail();
    if (m[3] !== undefined && m[2]!.length > 12) this.fail();
    const after = this.s[this.pos + m[0].length];
    if (after !== undefined && (after === '.' || (after >= '0' && after <= '9'))) this.fail();
    this.pos += m[0].length;
    const value = Number(m[0]);
    return m[3] === undefined ? { type: 'integer', value } : { type: 'decimal', value };
  }

  // RFC 9651 §4.2.5
  string(): string {
    this.pos += 1;
    let out = '';
    for (;;) {
      const c = this.peek();
      if (c === undefined) this.fail();
      this.pos += 1;
      if (c === '"') return out;
      if (c === '\\') {
        const next = this.peek();
        if (next !== '"' && next !== '\\') this.fail();
        out += next;
        this.pos += 1;
        continue;
      }
      const code = c.charCodeAt(0);
      if (code < 0x20 || code > 0x7e) this.fail();
      out += c;
    }
  }

  // RFC 9651 §4.2.6
  token(): string {
    const start = this.pos;
    this.pos += 1;
    while (this.peek() !== undefined && (TCHAR.test(this.peek()!) || this.peek() === ':' || this.peek() === '/')) {
      this.pos += 1;
    }
    return this.s.slice(start, this.pos);
  }

  // RFC 9651 §4.2.7
  binary(): string {
    const end = this.s.indexOf(':', this.pos + 1);
    if (end < 0) this.fail();
    const b64 = this.s.slice(this.pos + 1, end);
    if (!/^[A-Za-z0-9+/=]*$/.test(b64)) this.fail();
    this.pos = end + 1;
    return b64;
  }

  // RFC 9651 §4.2.8
  boolean(): boolean {
    const v = this.s[this.pos + 1];
    if (v !== '0' && v !== '1') this.fail();
    this.pos += 2;
    return v === '1';
  }

  // RFC 9651 §4.2.3.2
  parameters(): void {
    while (this.peek() === ';') {
      this.pos += 1;
      this.skipSp();
      this.key();
      if (this.peek() === '=') {
        this.pos += 1;
        this.bareItem();
      }
    }
  }

  // RFC 9651 §4.2.1.2
  innerList(): SfBareItem {
    this.pos += 1;
    const items: SfBareItem[] = [];
    for (;;) {
      this.skipSp();
      if (this.peek() === ')') {
        this.pos += 1;
        this.parameters();
        return { type: 'inner-list', value: items };
      }
      items.push(this.bareItem());
      this.parameters();
      const c = this.peek();
      if (c !== ' ' && c !== ')') this.fail();
    }
  }

  /**
   * After a member of a List or Dictionary (RFC 9651 §4.2.1, §4.2.2): true at the end of the
   * field, else past the comma before the next member (a trailing comma fails).
   */
  lastMember(): boolean {
    this.skipOws();
    if (this.peek() === undefined) return true;
    if (this.peek() !== ',') this.fail();
    this.pos += 1;
    this.skipOws();
    if (this.peek() === undefined) this.fail(); // trailing comma
    return false;
  }

  itemOrInnerList(): SfBareItem {
    if (this.peek() === '(') return this.innerList();
    const item = this.bareItem();
    this.parameters();
    return item;
  }
}

/**
 * Parses a Dictionary (RFC 9651 §4.2.2). A member without a value is Boolean true; a repeated key
 * keeps its last value, as §4.2.2 says. Returns `undefined` on any parse error.
 */
export function parseSfDictionary(input: string): SfDictionary | undefined {
  const p = new Parser(input);
  const dict: SfDictionary = new Map();
  try {
    p.skipSp();
    while (p.peek() !== undefined) {
      const key = p.key();
      let value: SfBareItem;
      if (p.peek() === '=') {
        p.pos += 1;
        value = p.itemOrInnerList();
      } else {
        value = { type: 'boolean', value: true };
        p.parameters();
      }
      dict.set(key, value);
      if (p.lastMember()) break;
    }
    return dict;
  } catch (err) {
    if (err instanceof SfParseError) return undefined;
    throw err;
  }
}

/**
 * Parses a List (RFC 9651 §4.2.1): its members in order, items and inner lists alike (parameters
 * are checked but not kept). Returns `undefined` on any parse error; an empty field is an empty list.
 */
export function parseSfList(input: string): SfBareItem[] | undefined {
  const p = new Parser(input);
  const members: SfBareItem[] = [];
  try {
    p.skipSp();
    while (p.peek() !== undefined) {
      members.push(p.itemOrInnerList());
      if (p.lastMember()) break;
    }
    return members;
  } catch (err) {
    if (err instanceof SfParseError) return undefined;
    throw err;
  }
}

/** True when `s` can be serialised as an sf-token (RFC 9651 §3.3.4). */
export function isSfToken(s: string): boolean {
  return /^[A-Za-z*][!#$%&'*+\-.^_`|~0-9A-Za-z:/]*$/.test(s);
}

/**
 * Serialises an sf-string (RFC 9651 §4.1.6): quotes, with `"` and `\` escaped. Characters outside
 * printable ASCII cannot be represented and are replaced by `?`, so the header stays valid.
 */
export function serializeSfString(s: string): string {
  return `"${s.replace(/[^\x20-\x7e]/g, '?').replace(/["\\]/g, (c) => `\\${c}`)}"`;
}

/** Serialises a token if it is one, else a string (useful for free-form words such as reasons). */
export function serializeSfTokenOrString(s: string): string {
  return isSfToken(s) ? s : serializeSfString(s);
}
