/**
 * parseSfDictionary against the `structured-headers` package (run against the httpwg test suite),
 * on generated inputs: valid dictionaries of every item type, and the same with characters
 * inserted, removed or replaced. Both must accept the same inputs and read the same values.
 *
 * Where the package is known to differ, the comparison leaves it out, and the table tests in
 * structured-fields.test.ts cover it instead: Dates (it fails on any Date that is not the last
 * thing in the field), Integer versus Decimal (it reads both as a JavaScript number), and a byte
 * sequence whose base64 it cannot decode (RFC 9651 §4.2.7 lets a parser accept bad padding).
 */
import { parseDictionary, Token, DisplayString, type BareItem, type InnerList, type Item } from 'structured-headers';
import { describe, expect, it } from 'vitest';
import { parseSfDictionary, type SfBareItem } from '../../../src/http/structured-fields.js';

/** mulberry32: a small seeded generator, so every run tests the same inputs. */
function generator(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = generator(9213);
const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
const digits = (n: number): string => Array.from({ length: n }, () => pick('0123456789'.split(''))).join('');

function bareItem(): string {
  switch (Math.floor(random() * 8)) {
    case 0:
      return `${random() < 0.3 ? '-' : ''}${digits(1 + Math.floor(random() * 16))}`;
    case 1:
      return `${random() < 0.3 ? '-' : ''}${digits(1 + Math.floor(random() * 13))}.${digits(1 + Math.floor(random() * 4))}`;
    case 2:
      return `"${Array.from({ length: Math.floor(random() * 6) }, () => pick(['a', ' ', '\\"', '\\\\', ',', ';', '=', '(', '\t', 'é'])).join('')}"`;
    case 3:
      return `${pick(['a', 'Z', '*', 'no-cache'])}${Array.from({ length: Math.floor(random() * 5) }, () => pick(['b', '/', ':', '-', '!', '.', '9'])).join('')}`;
    case 4:
      return `:${pick(['', 'aGk=', 'aGVsbG8=', 'AAEC', 'aGk', 'a', '@@'])}:`;
    case 5:
      return pick(['?0', '?1', '?2', '?']);
    case 6:
      return `%"${Array.from({ length: Math.floor(random() * 5) }, () => pick(['a', '%c3%bc', '%C3', '%e2%82%ac', '%', ' ', '%ff'])).join('')}"`;
    default:
      return pick(['', '-', '.5', '(', ')']);
  }
}

function parameters(): string {
  let out = '';
  while (random() < 0.3) out += `;${random() < 0.2 ? ' ' : ''}${pick(['p', 'q1', '*x', 'P'])}${random() < 0.6 ? `=${bareItem()}` : ''}`;
  return out;
}

function member(): string {
  const key = pick(['max-age', 's-maxage', 'private', 'no-cache', 'a', '*k', 'k_1.x', 'Max-Age', 'A', '1a']);
  if (random() < 0.25) return `${key}${parameters()}`;
  if (random() < 0.15) {
    const items = Array.from({ length: Math.floor(random() * 3) }, () => `${bareItem()}${parameters()}`);
    return `${key}=(${random() < 0.2 ? ' ' : ''}${items.join(pick([' ', '  ', ',']))})${parameters()}`;
  }
  return `${key}=${bareItem()}${parameters()}`;
}

function dictionary(): string {
  const members = Array.from({ length: Math.floor(random() * 4) }, member);
  const joined = members.join(pick([', ', ',', ' ,\t', ',  ']));
  return `${random() < 0.2 ? ' ' : ''}${joined}${random() < 0.1 ? ' ' : ''}`;
}

function mutate(s: string): string {
  const at = Math.floor(random() * (s.length + 1));
  const c = pick([',', ';', '=', ' ', '"', '(', ')', ':', '?', '1', 'a', '.', '-', '\\', '%', '\t', 'A', '*']);
  switch (Math.floor(random() * 3)) {
    case 0:
      return s.slice(0, at) + c + s.slice(at);
    case 1:
      return s.slice(0, at) + s.slice(at + 1);
    default:
      return s.slice(0, at) + c + s.slice(at + 1);
  }
}

/** What the package read, in parseSfDictionary's shape (a number is an integer or a decimal alike). */
function fromOracle(value: BareItem): SfBareItem | { type: 'number'; value: number } {
  if (typeof value === 'number') return { type: 'number', value };
  if (typeof value === 'string') return { type: 'string', value };
  if (typeof value === 'boolean') return { type: 'boolean', value };
  if (value instanceof Token) return { type: 'token', value: value.toString() };
  if (value instanceof DisplayString) return { type: 'display-string', value: value.toString() };
  if (value instanceof ArrayBuffer) return { type: 'binary', value: Buffer.from(value).toString('base64') };
  throw new Error(`unexpected item ${String(value)}`);
}

function comparable(item: SfBareItem): unknown {
  if (item.type === 'integer' || item.type === 'decimal') return { type: 'number', value: item.value };
  if (item.type === 'binary') return { type: 'binary', value: Buffer.from(item.value, 'base64').toString('base64') };
  if (item.type === 'inner-list') return item.value.map(comparable);
  return item;
}

function oracleComparable(member: Item | InnerList): unknown {
  const [value] = member;
  if (Array.isArray(value)) return (value as Item[]).map(([v]) => fromOracle(v));
  return fromOracle(value as BareItem);
}

describe('parseSfDictionary agrees with structured-headers (RFC 9651 §4.2.2)', () => {
  it('on 20 000 generated fields, valid and broken', () => {
    let accepted = 0;
    let rejected = 0;
    for (let i = 0; i < 20_000; i++) {
      let input = dictionary();
      const mutations = random() < 0.5 ? 0 : 1 + Math.floor(random() * 2);
      for (let m = 0; m < mutations; m++) input = mutate(input);
      let expected: [string, unknown][] | undefined;
      try {
        expected = [...parseDictionary(input)].map(([k, v]) => [k, oracleComparable(v)]);
      } catch (err) {
        // Bad base64 padding: RFC 9651 §4.2.7 lets a parser accept it (ours keeps the text).
        if (/base64/.test((err as Error).message) && parseSfDictionary(input) !== undefined) continue;
        expected = undefined;
      }
      const ours = parseSfDictionary(input);
      const actual = ours === undefined ? undefined : [...ours].map(([k, v]) => [k, comparable(v)]);
      expect({ input, parsed: actual }).toEqual({ input, parsed: expected });
      if (expected === undefined) rejected++;
      else accepted++;
    }
    // The generator covers both sides.
    expect(accepted).toBeGreaterThan(3_000);
    expect(rejected).toBeGreaterThan(3_000);
  });
});
