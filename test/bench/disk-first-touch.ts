/**
 * A disk hit's store work when it is the first for its object in the process, against one read
 * again: a cache of `--objects` entries built by disk-build.ts (the store's own format), the store
 * opened as the edge opens it, then `DiskBlobStore.getNow` (index lookup, record decode, pread and
 * checks, the bytes lent and given back) in `--rounds` rounds of `--reads` reads each, alternately
 * of random objects of the whole cache (nearly each the first of its object here once the cache
 * holds many more objects than a round reads) and of a set of `--hot` objects read again and again
 * (the memos' case). Prints CPU per read (median and range of the rounds; a warm-up round of each
 * first, which faults the index's pages into this process) and page faults per read: the first
 * touch's cost over the repeated read's is what grows from ten thousand objects to a million in
 * the edge's benchmark (test/bench/disk.ts, index section), where the hits at ten thousand objects
 * are reads again and at a million nearly all first reads.
 *
 *   npm run build && node dist/test/bench/disk-first-touch.js [--objects 1000000] [--size 2048] [--reads 10000] [--rounds 9] [--hot 5000] [--dir DIR] [--host H]
 *
 * `--dir`: build the cache there once and reuse it in later runs (building a million takes minutes);
 * default a temp folder, removed. `--host`: the host part of its keys (default 127.0.0.1:8080). A/B: copy the compiled file next to another build's
 * dist/test/bench/ and run it there with the same `--dir`: it measures the build it sits in.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { DiskBlobStore } from '../../src/blob/disk-blob-store.js';
import { fixed, median } from './bench-lib.js';
import { benchPath, buildCache } from './disk-build.js';
import { describeRounds, measureRound, type OpRound } from './op-rounds.js';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '2048' },
    reads: { type: 'string', default: '10000' },
    rounds: { type: 'string', default: '9' },
    hot: { type: 'string', default: '5000' },
    dir: { type: 'string' },
    host: { type: 'string', default: '127.0.0.1:8080' },
  },
});
const objects = Number(values.objects);
const size = Number(values.size);
const reads = Number(values.reads);
const rounds = Number(values.rounds);
const hotCount = Math.min(Number(values.hot), objects);
const host = values.host;
const keyOf = (i: number) => `${host}${benchPath(i, size)}`;

/** One round of disk hits: each key read, its bytes checked, lent and given back. */
function round(store: DiskBlobStore, keys: readonly string[]): OpRound {
  const r = measureRound(keys, (key) => {
    const hit = store.getNow(key);
    if (hit === undefined) throw new Error(`${key}: no hit`);
    const bytes = hit.data.length;
    hit.release?.();
    return bytes;
  });
  if (r.total !== keys.length * size) throw new Error('short reads');
  return r;
}

const summary = (label: string, rs: readonly OpRound[]) => describeRounds(label, rs, { per: 'read', unit: 'µs' });

const tmp = values.dir === undefined ? await mkdtemp(join(os.tmpdir(), 'anycdn-bench-first-touch-')) : undefined;
const dir = values.dir ?? join(tmp!, 'cache');
try {
  const marker = join(dir, `built-${objects}-${size}`);
  if (!existsSync(marker)) {
    const built = await buildCache({ dir, host, objects, size, segmentSize: 64 * 1024 * 1024 });
    await writeFile(marker, String(built.ms));
    console.log(`built ${objects} objects of ${size} bytes in ${fixed(built.ms / 1000, 0)} s`);
  }
  const store = await DiskBlobStore.open({ dir, maxBytes: 40 * 1024 ** 3, maxEntrySize: 1024 ** 3 });
  const hot = Array.from({ length: hotCount }, (_, i) => keyOf(Math.floor((i * objects) / hotCount)));
  const randomKeys = () => Array.from({ length: reads }, () => keyOf(Math.floor(Math.random() * objects)));
  const hotKeys = () => Array.from({ length: reads }, () => hot[Math.floor(Math.random() * hot.length)]!);
  const load0 = os.loadavg()[0]!;
  round(store, randomKeys());
  round(store, hotKeys());
  const first: OpRound[] = [];
  const again: OpRound[] = [];
  for (let r = 0; r < rounds; r++) {
    first.push(round(store, randomKeys()));
    again.push(round(store, hotKeys()));
  }
  await store.close();
  console.log(`${objects} objects of ${size} bytes, ${rounds} rounds of ${reads} reads; load ${load0.toFixed(1)}–${os.loadavg()[0]!.toFixed(1)}`);
  console.log(summary('random objects of the whole cache', first));
  console.log(summary(`${hotCount} objects read again and again`, again));
  console.log(`ratio of the medians: ${fixed(median(first.map((r) => r.cpuNs)) / median(again.map((r) => r.cpuNs)), 2)}`);
} finally {
  if (tmp !== undefined) await rm(tmp, { recursive: true, force: true });
}
