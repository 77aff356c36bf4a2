import { PassThrough, type Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { sliceReadable } from '../../../edge/body-slice.js';
import { isCdnError } from '../../../src/errors.js';

async function collect(stream: AsyncIterable<Buffer>): Promise<string> {
  const parts: Buffer[] = [];
  for await (const chunk of stream) parts.push(chunk);
  return Buffer.concat(parts).toString();
}

/** Let streams run until `done()` holds; bounded, no timers. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 1_000 && !done(); i++) await new Promise((resolve) => setImmediate(resolve));
  expect(done()).toBe(true);
}

/** How a stream ended: 'end', or the error's code. */
function outcomeOf(stream: Readable): { value: string | undefined } {
  const outcome = { value: undefined as string | undefined };
  stream.on('end', () => (outcome.value = 'end'));
  stream.on('error', (err) => (outcome.value = isCdnError(err) ? err.code : String(err)));
  return outcome;
}

describe('sliceReadable', () => {
  it('yields the inclusive range across chunks and releases the source', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 3, 11);
    source.write('0123456');
    source.write('789abcdef');
    source.end();
    expect(await collect(slice)).toBe('3456789ab');
    expect(source.destroyed).toBe(true);
  });

  it('releases the source as soon as the range is complete, before the body ends', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 0, 4);
    source.write('0123456789');
    expect(await collect(slice)).toBe('01234');
    expect(source.destroyed).toBe(true);
  });

  it('yields a range that starts inside a chunk and ends in a later one, chunk by chunk', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 5, 5);
    for (const part of ['01', '234', '5', '6789']) source.write(part);
    expect(await collect(slice)).toBe('5');
  });

  // A client gone before its answer starts: the slice is destroyed before it ever read. The source
  // (a shared body's reader) must be released all the same.
  it('releases the source when destroyed before its first read', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 0, 9);
    slice.destroy();
    await until(() => source.destroyed);
  });

  // A client gone while its range has not arrived yet: the source is released now, not when
  // upstream's next bytes come (an async generator's pending read held it until then).
  it('releases the source when destroyed while waiting for the bytes of its range', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 100, 199);
    const outcome = outcomeOf(slice);
    slice.resume();
    source.write('0123456789');
    await until(() => source.readableLength === 0 && source.writableLength === 0);
    slice.destroy();
    await until(() => source.destroyed);
    expect(slice.destroyed).toBe(true);
    expect(outcome.value).toBeUndefined();
  });

  it('releases the source when destroyed while its reader is slow', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 0, 1_000_000);
    source.write(Buffer.alloc(200_000));
    slice.read(0); // a reader that asked once, then stopped reading
    await until(() => slice.readableLength > 0);
    slice.destroy();
    await until(() => source.destroyed);
  });

  it('reads the source only as fast as the slice is read', async () => {
    const source = new PassThrough({ highWaterMark: 1024 });
    const slice = sliceReadable(source, 0, 10_000_000);
    for (let i = 0; i < 200; i++) source.write(Buffer.alloc(1024));
    slice.read(0);
    await until(() => slice.readableLength >= slice.readableHighWaterMark);
    const held = slice.readableLength;
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    // The slice holds about its high-water mark; the rest is still in the source, unread (but for
    // the one chunk the PassThrough has in hand).
    expect(slice.readableLength).toBe(held);
    expect(held).toBeLessThan(slice.readableHighWaterMark + 2 * 1024);
    expect(source.readableLength + source.writableLength).toBeGreaterThanOrEqual(200 * 1024 - held - 1024);
    slice.destroy();
  });

  it('fails with the source’s error', async () => {
    const source = new PassThrough();
    const slice = sliceReadable(source, 0, 9);
    const outcome = outcomeOf(slice);
    slice.resume();
    source.destroy(new Error('upstream went away'));
    await until(() => outcome.value !== undefined);
    expect(outcome.value).toBe('Error: upstream went away');
  });

  // A body shorter than the range it was asked for: an error, so the client's connection is cut
  // rather than a short 206 taken for complete.
  it('fails when the body ends or closes before the range is complete', async () => {
    const ended = new PassThrough();
    const short = sliceReadable(ended, 5, 19);
    const endedOutcome = outcomeOf(short);
    const parts: string[] = [];
    short.on('data', (c: Buffer) => parts.push(c.toString()));
    ended.end('0123456789');
    await until(() => endedOutcome.value !== undefined);
    expect([parts.join(''), endedOutcome.value]).toEqual(['56789', 'body_short']);

    const closed = new PassThrough();
    const cut = sliceReadable(closed, 0, 9);
    const closedOutcome = outcomeOf(cut);
    cut.resume();
    closed.write('01234');
    closed.destroy();
    await until(() => closedOutcome.value !== undefined);
    expect(closedOutcome.value).toBe('body_short');
  });
});
