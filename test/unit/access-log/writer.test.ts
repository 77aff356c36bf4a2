import { describe, expect, it } from 'vitest';
import { AccessLogWriter, type LogSink } from '../../../src/access-log/writer.js';

/** A destination kept in memory, as files by name; `reopen` moves on to the next name. */
class MemorySink implements LogSink {
  readonly files: string[][] = [[]];
  readonly writes: string[] = [];
  closed = false;
  /** While set, writes wait for `release()` (a destination that stopped reading). */
  stalled = false;
  failNext = 0;
  private waiting: (() => void)[] = [];
  private failing: (() => void)[] = [];
  private onWrite: (() => void)[] = [];

  write(chunks: readonly Buffer[]): Promise<void> {
    if (this.closed) return Promise.reject(new Error('closed'));
    const text = Buffer.concat(chunks).toString('latin1');
    this.writes.push(text);
    for (const notify of this.onWrite.splice(0)) notify();
    if (this.failNext > 0) {
      this.failNext--;
      return Promise.reject(Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }));
    }
    const land = (): void => void this.files.at(-1)!.push(text);
    if (!this.stalled) {
      land();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) => {
      this.waiting.push(() => (land(), resolve()));
      this.failing.push(() => reject(new Error('closed while full')));
    });
  }

  async reopen(): Promise<void> {
    this.files.push([]);
  }

  /** Like a real destination: a write still waiting fails. */
  async close(): Promise<void> {
    this.closed = true;
    for (const go of this.failing.splice(0)) go();
  }

  release(): void {
    this.stalled = false;
    this.failing.splice(0);
    for (const go of this.waiting.splice(0)) go();
  }

  /** Resolves at the next write. */
  nextWrite(): Promise<void> {
    return new Promise((resolve) => this.onWrite.push(resolve));
  }
}

/** A line of exactly `length` bytes, numbered. */
const line = (n: number, length = 100): string => `line ${String(n).padStart(4, '0')} `.padEnd(length - 1, '.') + '\n';

function writer(sink: LogSink, o: Partial<ConstructorParameters<typeof AccessLogWriter>[0]> = {}): AccessLogWriter {
  return new AccessLogWriter({ sink, maxBufferBytes: 1024 * 1024, flushIntervalMs: 60_000, sample: 1, ...o });
}

describe('AccessLogWriter', () => {
  it('samples with the fraction given: a line when random() < sample', () => {
    const values = [0.05, 0.5, 0.3, 0.2999, 0.99];
    const w = writer(new MemorySink(), { sample: 0.3, random: () => values.shift()! });
    expect([w.sampled(), w.sampled(), w.sampled(), w.sampled(), w.sampled()]).toEqual([true, false, false, true, false]);
    const never = writer(new MemorySink(), { sample: 0, random: () => 0 });
    expect(never.sampled()).toBe(false);
    const always = writer(new MemorySink(), { sample: 1, random: () => 0.999999 });
    expect(always.sampled()).toBe(true);
  });

  it('writes nothing on the request path: lines wait, and a flush writes them all in one write', async () => {
    const sink = new MemorySink();
    const w = writer(sink);
    for (let i = 0; i < 10; i++) w.write(line(i));
    expect(sink.writes).toEqual([]);
    await w.flush();
    expect(sink.writes).toEqual([Array.from({ length: 10 }, (_, i) => line(i)).join('')]);
    expect(w.counts).toEqual({ written: 10, droppedFull: 0, droppedError: 0 });
    await w.flush();
    expect(sink.writes.length).toBe(1);
  });

  it('writes a batch as soon as a quarter of the buffer (at most 64 KiB) waits', () => {
    const sink = new MemorySink();
    const w = writer(sink, { maxBufferBytes: 4000 });
    for (let i = 0; i < 9; i++) w.write(line(i));
    expect(sink.writes.length).toBe(0);
    w.write(line(9));
    expect(sink.writes.length).toBe(1);
    expect(sink.writes[0]!.length).toBe(1000);
  });

  it('writes what waits once the flush interval has passed', async () => {
    const sink = new MemorySink();
    const w = writer(sink, { flushIntervalMs: 10 });
    const written = sink.nextWrite();
    w.write(line(1));
    w.write(line(2));
    await written;
    expect(sink.writes).toEqual([line(1) + line(2)]);
    await w.close();
  });

  it('with a stalled destination, keeps at most maxBufferBytes (waiting and in flight) and counts what it drops', async () => {
    const sink = new MemorySink();
    sink.stalled = true;
    const w = writer(sink, { maxBufferBytes: 1000 });
    // 300 bytes reach the batch size (250): they go to the destination, which does not take them.
    for (let i = 0; i < 3; i++) w.write(line(i));
    expect(sink.writes.length).toBe(1);
    for (let i = 3; i < 13; i++) w.write(line(i));
    // 300 in flight + 700 waiting = 1000: lines 10, 11 and 12 did not fit.
    expect(w.counts).toEqual({ written: 0, droppedFull: 3, droppedError: 0 });
    expect(sink.writes.length).toBe(1);
    sink.release();
    await w.flush();
    expect(sink.files).toEqual([[line(0) + line(1) + line(2), Array.from({ length: 7 }, (_, i) => line(i + 3)).join('')]]);
    expect(w.counts).toEqual({ written: 10, droppedFull: 3, droppedError: 0 });
    // Room again once written.
    w.write(line(13));
    await w.flush();
    expect(sink.files[0]!.at(-1)).toBe(line(13));
  });

  it('counts the lines of a failed write as dropped, reports it, and goes on', async () => {
    const sink = new MemorySink();
    const errors: string[] = [];
    const w = writer(sink, { onError: (err, what) => errors.push(`${what}: ${(err as Error).message}`) });
    sink.failNext = 1;
    w.write(line(1));
    w.write(line(2));
    await w.flush();
    w.write(line(3));
    await w.flush();
    expect(w.counts).toEqual({ written: 1, droppedFull: 0, droppedError: 2 });
    expect(errors).toEqual(['write: ENOSPC: no space left on device']);
    expect(sink.files).toEqual([[line(3)]]);
  });

  it('reopens between two writes: lines accepted before go to the old file, later ones to the new', async () => {
    const sink = new MemorySink();
    const w = writer(sink);
    w.write(line(1));
    w.write(line(2));
    const reopened = w.reopen();
    w.write(line(3));
    expect(await reopened).toBe(true);
    await w.flush();
    expect(sink.files).toEqual([[line(1) + line(2)], [line(3)]]);
  });

  it('reopens only once the write under way has finished', async () => {
    const sink = new MemorySink();
    sink.stalled = true;
    const w = writer(sink, { maxBufferBytes: 400 });
    w.write(line(1)); // 100 bytes: the batch size, written at once, and stalled
    expect(sink.writes.length).toBe(1);
    let done = false;
    const reopened = w.reopen().then(() => (done = true));
    w.write(line(2));
    await Promise.resolve();
    expect(done).toBe(false);
    expect(sink.files.length).toBe(1);
    sink.release();
    await reopened;
    await w.flush();
    // Line 2 waited for the write before it, so it went to the old file too: nothing is lost.
    expect(sink.files).toEqual([[line(1), line(2)], []]);
  });

  it('close gives up on a destination that takes nothing within its wait, counting what is lost', async () => {
    const sink = new MemorySink();
    sink.stalled = true;
    const w = writer(sink, { maxBufferBytes: 400 });
    w.write(line(1)); // written at once, and stalled
    w.write(line(2)); // waiting
    await w.close(20);
    expect(sink.closed).toBe(true);
    expect(sink.files).toEqual([[]]);
    expect(w.counts).toEqual({ written: 0, droppedFull: 0, droppedError: 2 });
    expect(await w.reopen()).toBe(false);
  });

  it('close writes everything accepted, closes the destination, and drops (and counts) later lines', async () => {
    const sink = new MemorySink();
    const w = writer(sink);
    for (let i = 0; i < 5; i++) w.write(line(i));
    await w.close();
    expect(sink.closed).toBe(true);
    expect(sink.files).toEqual([[Array.from({ length: 5 }, (_, i) => line(i)).join('')]]);
    w.write(line(5));
    expect(w.counts).toEqual({ written: 5, droppedFull: 1, droppedError: 0 });
  });
});
