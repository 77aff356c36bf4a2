/**
 * The disk index's write path alone (src/blob/disk-index.ts, disk-index-state.ts), as the store
 * makes it on misses and evictions: an index of `--objects` entries, then rounds of `--ops`
 * changes issued `--burst` per event turn (they share write transactions, as under load): each
 * a new object's record (with its bytes brought into a segment) and, as often, the removal of an
 * old one. Prints the process's CPU per change (LMDB's write thread included) and wall time per
 * change: median and range of the rounds, after one round of warm-up.
 *
 *   npm run build && node dist/test/bench/index-writes.js [--objects 100000] [--ops 20000] [--burst 32] [--rounds 7]
 *
 * A/B: copy the compiled file next to another build's dist/test/bench/ and run it there: it
 * measures the index code of the build it sits in.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathOfKey, splitStoredKey } from '../../edge/cache-keys.js';
import { DiskIndex, type IndexRecord } from '../../src/blob/disk-index.js';
import { fixed, median } from './bench-lib.js';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '100000' },
    ops: { type: 'string', default: '20000' },
    burst: { type: 'string', default: '32' },
    rounds: { type: 'string', default: '7' },
  },
});
const objects = Number(values.objects);
const ops = Number(values.ops);
const burst = Number(values.burst);
const rounds = Number(values.rounds);
const host = '127.0.0.1:8080';
const SIZE = 2000;
const SEGMENT_SIZE = 64 * 1024 * 1024;

/** Object `i`'s record: a packed body in generation `g`, with the headers and a tag an origin sends. */
function record(index: DiskIndex, i: number, g: number): IndexRecord {
  const key = `${host}/s/${i}-${SIZE}.bin`;
  const now = 1_780_000_000_000 + i;
  const headers: [string, string][] = [
    ['content-type', 'application/octet-stream'],
    ['content-length', String(SIZE)],
    ['cache-control', 'public, max-age=86400'],
    ['etag', `"${i.toString(16)}"`],
    ['last-modified', 'Sun, 06 Dec 2026 00:00:00 GMT'],
  ];
  const meta = { version: 1, key, size: SIZE, status: 200, headers, requestTime: now, responseTime: now, storedAt: now, tags: [`t${i % 100}`] };
  return { key, g, seq: index.nextSeq(), off: (i * (SIZE + 64)) % SEGMENT_SIZE, bs: 262_144, crc: [i >>> 0], cost: SIZE + 400, meta };
}

const tmp = await mkdtemp(join(os.tmpdir(), 'anycdn-bench-index-writes-'));
try {
  const index = DiskIndex.open({ path: join(tmp, 'index.mdb'), readOnly: false, pathOf: (key) => pathOfKey(splitStoredKey(key).primary) });
  // The existing entries, in synchronous transactions of 10,000 (each put runs at once inside).
  for (let from = 0; from < objects; from += 10_000) {
    const puts: Promise<unknown>[] = [];
    index.batch(() => {
      for (let i = from; i < Math.min(objects, from + 10_000); i++) puts.push(index.put(record(index, i, 1), undefined, { newBytes: SIZE + 64, segmentSize: SEGMENT_SIZE }));
    });
    await Promise.all(puts);
  }
  let next = objects;
  let oldest = 0;
  /** One round: `ops` changes, half new objects and half removals of the oldest ones, `burst` per event turn. */
  const round = async (): Promise<{ cpuNs: number; wallNs: number }> => {
    const done: Promise<unknown>[] = [];
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    for (let n = 0; n < ops; n += burst) {
      for (let k = 0; k < burst; k += 2) {
        done.push(index.put(record(index, next++, 2), undefined, { newBytes: SIZE + 64, segmentSize: SEGMENT_SIZE }));
        done.push(index.remove(`${host}/s/${oldest++}-${SIZE}.bin`));
      }
      await new Promise((resolve) => setImmediate(resolve));
    }
    const results = (await Promise.all(done)) as { applied: boolean }[];
    if (!results.every((r) => r.applied)) throw new Error('a change did not apply');
    const wall = Number(process.hrtime.bigint() - t0);
    const cpu = process.cpuUsage(c0);
    return { cpuNs: ((cpu.user + cpu.system) * 1000) / done.length, wallNs: wall / done.length };
  };
  await round();
  const measured: { cpuNs: number; wallNs: number }[] = [];
  for (let r = 0; r < rounds; r++) measured.push(await round());
  const line = (values: number[]) => `${fixed(median(values) / 1000, 2)} µs (${fixed(Math.min(...values) / 1000, 2)}–${fixed(Math.max(...values) / 1000, 2)})`;
  console.log(`${objects} entries, ${rounds} rounds of ${ops} changes, ${burst} an event turn: CPU ${line(measured.map((m) => m.cpuNs))} a change, wall ${line(measured.map((m) => m.wallNs))}; load ${os.loadavg()[0]!.toFixed(1)}`);
  await index.close();
} finally {
  await rm(tmp, { recursive: true, force: true });
}
