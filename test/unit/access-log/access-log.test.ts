import { describe, expect, it } from 'vitest';
import { AccessLog } from '../../../src/access-log/access-log.js';
import { lineFormatter, type AccessRecord } from '../../../src/access-log/line.js';
import { AccessLogWriter, type LogSink } from '../../../src/access-log/writer.js';

/** Files by name, kept in memory; `reopen` moves on to the next one. */
class FilesSink implements LogSink {
  readonly files: string[] = [''];
  async write(chunks: readonly Buffer[]): Promise<void> {
    this.files[this.files.length - 1] += Buffer.concat(chunks).toString('latin1');
  }
  async reopen(): Promise<void> {
    this.files.push('');
  }
  async close(): Promise<void> {}
}

const T = Date.UTC(2026, 11, 5, 1, 29, 0, 123);
const record = (n: number): AccessRecord => ({
  time: T + n,
  clientAddress: '203.0.113.7',
  clientPort: 53422,
  method: 'GET',
  host: 'cdn.example',
  target: `/r/${n}`,
  protocol: 'HTTP/1.1',
  status: 200,
  bytes: 1024,
  durationMs: 0.05,
  ttfbMs: 0.05,
  outcome: 'hit',
  userAgent: 'curl/8',
  referer: undefined,
});

/** An access log in combined format over a memory sink, counting the lines it formats. */
function memoryLog(): { log: AccessLog; sink: FilesSink; formatted: () => number } {
  const sink = new FilesSink();
  const writer = new AccessLogWriter({ sink, maxBufferBytes: 1024 * 1024, flushIntervalMs: 60_000, sample: 1 });
  const combined = lineFormatter('combined');
  let formatted = 0;
  const log = new AccessLog(writer, (r) => (formatted++, combined(r)));
  return { log, sink, formatted: () => formatted };
}

const targets = (text: string): string[] => [...text.matchAll(/"GET (\S+) HTTP\/1\.1"/g)].map((m) => m[1]!);
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('AccessLog', () => {
  it("formats a turn's records together once the turn is over, in the order logged", async () => {
    const { log, sink, formatted } = memoryLog();
    for (let n = 0; n < 3; n++) log.log(record(n));
    expect(formatted()).toBe(0);
    await nextTurn();
    expect(formatted()).toBe(3);
    log.log(record(3));
    await log.flush();
    expect(targets(sink.files[0]!)).toEqual(['/r/0', '/r/1', '/r/2', '/r/3']);
  });

  it('formats at once when 256 records wait, so that waiting records stay bounded', async () => {
    const { log, sink, formatted } = memoryLog();
    for (let n = 0; n < 255; n++) log.log(record(n));
    expect(formatted()).toBe(0);
    log.log(record(255));
    expect(formatted()).toBe(256);
    log.log(record(256));
    expect(formatted()).toBe(256);
    await nextTurn();
    expect(formatted()).toBe(257);
    await log.flush();
    expect(targets(sink.files[0]!)).toEqual(Array.from({ length: 257 }, (_, n) => `/r/${n}`));
  });

  it('flush writes records logged in the same turn', async () => {
    const { log, sink } = memoryLog();
    log.log(record(0));
    await log.flush();
    expect(targets(sink.files[0]!)).toEqual(['/r/0']);
  });

  it('a reopen sends records logged before it to the old file, later ones to the new', async () => {
    const { log, sink } = memoryLog();
    log.log(record(0));
    log.log(record(1));
    expect(await log.reopen()).toBe(true);
    log.log(record(2));
    await log.flush();
    expect(sink.files.map(targets)).toEqual([['/r/0', '/r/1'], ['/r/2']]);
  });

  it('close writes records logged in the same turn, and counts later ones as dropped', async () => {
    const { log, sink } = memoryLog();
    log.log(record(0));
    await log.close();
    expect(targets(sink.files[0]!)).toEqual(['/r/0']);
    expect(log.counts).toEqual({ written: 1, droppedFull: 0, droppedError: 0 });
    log.log(record(1));
    await nextTurn();
    expect(log.counts).toEqual({ written: 1, droppedFull: 1, droppedError: 0 });
  });
});
