import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GrowingBody } from '../../../src/blob/streaming-body.js';
import { isCdnError } from '../../../src/errors.js';
import { pattern } from '../../contract/blob-store-contract.js';

const KiB = 1024;

/** Consume a reader in flowing mode, exposing what arrived so far and how it finished. */
function follow(reader: Readable) {
  const parts: Buffer[] = [];
  const state = { received: 0, ended: false, error: undefined as unknown, bytes: () => Buffer.concat(parts) };
  reader.on('data', (c: Buffer) => {
    parts.push(c);
    state.received += c.length;
  });
  reader.on('end', () => (state.ended = true));
  reader.on('error', (err) => (state.error = err));
  return state;
}

/** Let streams run until `done()` holds; bounded, no timers. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 10_000 && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
  expect(done()).toBe(true);
}

async function collect(reader: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of reader) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function codeOf(err: unknown): unknown {
  return isCdnError(err) ? err.code : err;
}

describe('GrowingBody', () => {
  it('gives a fast reader every byte as it arrives and a slow reader all of them later', async () => {
    const body = new GrowingBody();
    const data = pattern(50 * 10 * KiB, 3);
    const fast = follow(body.createReader());
    const slow = body.createReader();
    for (let i = 0; i < 50; i++) {
      body.append(data.subarray(i * 10 * KiB, (i + 1) * 10 * KiB));
      await until(() => fast.received === (i + 1) * 10 * KiB);
    }
    expect(fast.ended).toBe(false);
    body.end();
    await until(() => fast.ended);
    expect(fast.bytes().equals(data)).toBe(true);
    expect((await collect(slow)).equals(data)).toBe(true);
  });

  it('starts a reader created mid-way at byte 0 and lets it follow', async () => {
    const body = new GrowingBody();
    body.append(pattern(1000, 1));
    const late = follow(body.createReader());
    await until(() => late.received === 1000);
    body.append(pattern(500, 2));
    await until(() => late.received === 1500);
    body.end();
    await until(() => late.ended);
    expect(late.bytes().equals(Buffer.concat([pattern(1000, 1), pattern(500, 2)]))).toBe(true);
  });

  it('serves the whole body to a reader created after the end, and an empty body too', async () => {
    const body = new GrowingBody();
    body.append(pattern(3000, 1));
    body.append(new Uint8Array(0));
    body.append(pattern(4000, 2));
    body.end();
    expect((await collect(body.createReader())).equals(Buffer.concat([pattern(3000, 1), pattern(4000, 2)]))).toBe(true);
    const empty = new GrowingBody();
    empty.end();
    expect((await collect(empty.createReader())).length).toBe(0);
  });

  it('fails every reader when the producer fails, including readers created afterwards', async () => {
    const body = new GrowingBody();
    const flowing = follow(body.createReader());
    const idle = { error: undefined as unknown };
    body.createReader().on('error', (err) => (idle.error = err)); // never read
    body.append(pattern(2000));
    await until(() => flowing.received === 2000);
    const cause = new Error('upstream reset');
    body.fail(cause);
    await until(() => flowing.error !== undefined && idle.error !== undefined);
    expect(flowing.error).toBe(cause);
    expect(idle.error).toBe(cause);
    expect(flowing.ended).toBe(false);
    const after = follow(body.createReader());
    await until(() => after.error !== undefined);
    expect(after.error).toBe(cause);
    expect(after.received).toBe(0);
    expect(body.memoryBytes).toBe(0);
  });

  it('bounds memory without a file: a reader left behind fails, late joiners are refused, the head continues', async () => {
    const body = new GrowingBody({ maxMemoryBytes: 100 * KiB });
    const head = follow(body.createReader());
    const laggard = body.createReader(); // never read
    let laggardError: unknown;
    laggard.on('error', (err) => (laggardError = err));
    const data = pattern(30 * 10 * KiB, 5);
    let peak = 0;
    for (let i = 0; i < 30; i++) {
      body.append(data.subarray(i * 10 * KiB, (i + 1) * 10 * KiB));
      peak = Math.max(peak, body.memoryBytes);
      await until(() => head.received === (i + 1) * 10 * KiB);
    }
    body.end();
    await until(() => head.ended && laggardError !== undefined);
    expect(head.bytes().equals(data)).toBe(true);
    expect(codeOf(laggardError)).toBe('body_reader_behind');
    expect(peak).toBeLessThanOrEqual(110 * KiB);
    expect(codeOf(catching(() => body.createReader()))).toBe('body_not_joinable');
  });

  it('hands an ended body held whole in memory out as one Buffer, its very bytes when it came in one chunk', async () => {
    const one = new GrowingBody();
    const chunk = pattern(2 * KiB);
    one.append(chunk);
    expect(one.whole()).toBeUndefined(); // not ended: more may come
    one.end();
    const whole = one.whole()!;
    // The same bytes, not a copy of them.
    expect([whole.buffer, whole.byteOffset, whole.length]).toEqual([chunk.buffer, chunk.byteOffset, chunk.length]);
    const two = new GrowingBody();
    two.append(pattern(10));
    two.append(pattern(20));
    two.end();
    expect(two.whole()?.equals(Buffer.concat([pattern(10), pattern(20)]))).toBe(true);
    const empty = new GrowingBody();
    empty.end();
    expect(empty.whole()?.length).toBe(0);
  });

  it('still has its whole body once closed to new readers, but none once failed or past its memory window', async () => {
    const closed = new GrowingBody();
    closed.append(pattern(10));
    closed.end();
    await closed.close();
    expect(closed.whole()?.equals(pattern(10))).toBe(true);
    const failed = new GrowingBody();
    failed.append(pattern(10));
    failed.fail(new Error('upstream cut'));
    expect(failed.whole()).toBeUndefined();
    const trimmed = new GrowingBody({ maxMemoryBytes: 16 });
    trimmed.append(pattern(10));
    trimmed.append(pattern(10));
    trimmed.end();
    expect(trimmed.memoryBytes).toBe(10);
    expect(trimmed.whole()).toBeUndefined();
  });

  it('refuses appends after the end and readers after close', async () => {
    const body = new GrowingBody();
    body.append(pattern(10));
    body.end();
    expect(codeOf(catching(() => body.append(pattern(1))))).toBe('body_ended');
    const reader = body.createReader();
    await body.close();
    expect(codeOf(catching(() => body.createReader()))).toBe('body_closed');
    expect((await collect(reader)).equals(pattern(10))).toBe(true);
  });

  it('once released, lets its bytes go with the last reader under way and hands out no more', async () => {
    const body = new GrowingBody();
    body.append(pattern(10));
    body.append(pattern(6));
    body.end();
    const reader = body.createReader();
    await body.release();
    expect(body.released).toBe(true);
    // The reader under way still gets every byte from memory.
    expect(body.memoryBytes).toBe(16);
    expect(Buffer.concat([pattern(10), pattern(6)]).equals(await collect(reader))).toBe(true);
    expect(body.memoryBytes).toBe(0);
    // Later requests read the store: no whole body, no reader.
    expect(body.whole()).toBeUndefined();
    expect(codeOf(catching(() => body.createReader()))).toBe('body_closed');
  });

  it('released without readers, drops its bytes at once', async () => {
    const body = new GrowingBody();
    body.append(pattern(10));
    body.end();
    expect(body.whole()?.equals(pattern(10))).toBe(true);
    await body.release();
    expect(body.memoryBytes).toBe(0);
    expect(body.whole()).toBeUndefined();
  });
});

function catching(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}
