/**
 * What a cluster worker's hit pays so that it counts for the disk's eviction (src/blob/read-hashes.ts),
 * against the reference measured in the same run: the memory hit itself (MemoryBlobStore.getHot of
 * a small object), and what a single process's hit pays for the same (TieredBlobStore touches the
 * disk store: the same hash, noted at once). Also what the shield's side costs per hash: the message's JSON round trip (the
 * IPC channel's serialization), its check, and the notes into the disk store's marks.
 *
 *   node dist/test/bench/read-hashes.js [--rounds 7]
 *
 * Prints one line per case: ns per hit (median of the rounds, with the range), and the ratio to
 * the reference.
 */
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DiskBlobStore } from '../../src/blob/disk-blob-store.js';
import { MemoryBlobStore } from '../../src/blob/memory-blob-store.js';
import { ReadHashes, readHashesOf } from '../../src/blob/read-hashes.js';
import { put } from '../contract/blob-store-contract.js';
import { fixed, median, table } from './bench-lib.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '7' } } });
const rounds = Number(values.rounds);
const N = 1_000_000;
const keys = Array.from({ length: 100_000 }, (_, i) => `cdn.example.com/img/photos/${i}.jpg?w=${320 + (i % 5) * 160}&fmt=webp`);
const hot = keys.slice(0, 100);

/** ns per call of `run(i)` over N calls. */
function time(run: (i: number) => void): number {
  const start = process.hrtime.bigint();
  for (let i = 0; i < N; i++) run(i);
  return Number(process.hrtime.bigint() - start) / N;
}

const memory = new MemoryBlobStore({ maxBytes: 256 * 1024 * 1024, maxEntrySize: 1024 * 1024 });
const body = Buffer.alloc(2048, 7);
for (const key of hot) await put(memory, key, body);
let sent = 0;
const reads = new ReadHashes((h) => void (sent += h.length));
const dir = await fsp.mkdtemp(join(tmpdir(), 'anycdn-bench-reads-'));
const disk = await DiskBlobStore.open({ dir, maxBytes: 10 * 1024 ** 3 });
const batch = Array.from({ length: 4096 }, (_, i) => (i * 2654435761) >>> 0);

const cases: Record<string, () => number> = {
  'memory hit (reference)': () =>
    time((i) => {
      if (memory.getHot(hot[i % hot.length]!) === undefined) throw new Error('not in memory');
    }),
  'single process: DiskBlobStore.touch (the same hash, noted at once)': () => time((i) => disk.touch(hot[i % hot.length]!)),
  'note, 100 hot keys (repeats within a batch)': () => time((i) => reads.note(hot[i % hot.length]!)),
  'note, 100,000 keys (a batch sent every 4096)': () => time((i) => reads.note(keys[i % keys.length]!)),
  'shield, per hash: JSON round trip, check, note': () => {
    const start = process.hrtime.bigint();
    const messages = N / batch.length;
    for (let m = 0; m < messages; m++) {
      const received = JSON.parse(JSON.stringify({ type: 'anycdn:reads', hashes: batch })) as { hashes: unknown };
      const hashes = readHashesOf(received.hashes);
      disk.noteReadHashes(hashes!);
    }
    return Number(process.hrtime.bigint() - start) / (messages * batch.length);
  },
};

const results = new Map<string, number[]>(Object.keys(cases).map((k) => [k, []]));
for (let r = 0; r < rounds; r++) for (const [name, run] of Object.entries(cases)) results.get(name)!.push(run());
reads.flush();
await disk.close();
await fsp.rm(dir, { recursive: true, force: true });
const reference = median(results.get('memory hit (reference)')!);
console.log(
  table(
    ['case', 'ns per hit (median)', 'range', 'ratio to reference'],
    [...results].map(([name, ns]) => [name, fixed(median(ns)), `${fixed(Math.min(...ns))}–${fixed(Math.max(...ns))}`, fixed(median(ns) / reference, 2)]),
  ),
);
console.log(`(${sent} hashes sent; ${rounds} rounds of ${N} calls, interleaved)`);
