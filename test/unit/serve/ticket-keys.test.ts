import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseTicketKeys, TicketKeys } from '../../../src/serve/ticket-keys.js';

const key = (fill: number): Buffer => Buffer.alloc(48, fill);

describe('parseTicketKeys', () => {
  it('reads one base64 key per line, in order, skipping comments and blank lines', () => {
    const text = `# rotated 2026-12-01\n${key(1).toString('base64')}\n\n  ${key(2).toString('base64')}  # previous\n`;
    expect(parseTicketKeys(text, 'keys')).toEqual([key(1), key(2)]);
  });

  it.each([
    ['', 'keys: no keys: one per line, 48 bytes in base64 (openssl rand -base64 48)'],
    ['# nothing\n', 'keys: no keys: one per line, 48 bytes in base64 (openssl rand -base64 48)'],
    [`${Buffer.alloc(32, 1).toString('base64')}\n`, 'keys: line 1: expected 48 bytes in base64 (openssl rand -base64 48), got 32 bytes'],
    [`${key(1).toString('base64')}\nnot base64!\n`, 'keys: line 2: expected 48 bytes in base64 (openssl rand -base64 48)'],
    [`${key(1).toString('base64')}\n${key(1).toString('base64')}\n`, 'keys: line 2: the same key (its first 16 bytes, the name) is listed twice'],
    [Array.from({ length: 17 }, () => randomBytes(48).toString('base64')).join('\n'), 'keys: 17 keys; at most 16'],
  ])('refuses %j', (text, message) => {
    expect(() => parseTicketKeys(text, 'keys')).toThrow(message);
  });
});

describe('TicketKeys', () => {
  it('knows whether the keys are this list, in this order', () => {
    const keys = new TicketKeys([key(1), key(2)]);
    expect(keys.sameAs([key(1), key(2)])).toBe(true);
    expect(keys.sameAs([key(2), key(1)])).toBe(false);
    expect(keys.sameAs([key(1)])).toBe(false);
    keys.set([key(3)]);
    expect(keys.current).toEqual(key(3));
    expect(() => keys.set([Buffer.alloc(47)])).toThrow('ticket keys are 48 bytes, at least one');
  });
});
