/**
 * The disk index's lookup alone (src/blob/disk-index.ts), as a cluster worker makes it on a hit:
 * a cache of `--objects` entries built by disk-build.ts (the store's own format), the index opened
 * read-only, then `DiskIndex.get` of random keys (each record decoded and its headers touched), in
 * `--rounds` rounds of `--lookups`; and the same over 1,000 keys looked up again and again (the
 * memo of decoded records). Prints CPU and wall time per lookup (median and range of the rounds;
 * the first round apart: its lookups fault the index's pages into this process), the index's size
 * on disk per entry, the `objects` database's B-tree (depth, leaf pages: what a lookup walks), and
 * the page faults of the rounds per lookup.
 *
 *   npm run build && node dist/test/bench/index-lookup.js [--objects 1000000] [--size 64] [--lookups 200000] [--rounds 5]
 *
 * A/B: copy the compiled file next to another build's dist/test/bench/ and run it there: it
 * measures the index code of the build it sits in.
 */
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { open } from 'lmdb';
import { pathOfKey, splitStoredKey } from '../../edge/cache-keys.js';
import { DiskIndex } from '../../src/blob/disk-index.js';
import { layoutOf } from '../../src/blob/disk-layout.js';
import { fixed } from './bench-lib.js';
import { benchPath, buildCache } from './disk-build.js';
import { describeRounds, measureRound, type OpRound } from './op-rounds.js';

const { values } = parseArgs({
  options: {
    objects: { type: 'string', default: '1000000' },
    size: { type: 'string', default: '64' },
    lookups: { type: 'string', default: '200000' },
    rounds: { type: 'string', default: '5' },
  },
});
const objects = Number(values.objects);
const size = Number(values.size);
const lookups = Number(values.lookups);
const rounds = Number(values.rounds);
const host = '127.0.0.1:8080';
const keyOf = (i: number) => `${host}${benchPath(i, size)}`;

/** Look up `keys` in turn, each record decoded and its headers touched. */
function round(index: DiskIndex, keys: readonly string[]): OpRound {
  const r = measureRound(keys, (key) => {
    const rec = index.get(key);
    if (rec === undefined) throw new Error(`${key} is not in the index`);
    return rec.meta.headers.length + rec.crc.length;
  });
  if (r.total === 0) throw new Error('no headers');
  return r;
}

const summary = (label: string, rs: readonly OpRound[]) => describeRounds(label, rs, { per: 'lookup', unit: 'ns', wall: true });

const tmp = await mkdtemp(join(os.tmpdir(), 'anycdn-bench-index-'));
try {
  const dir = join(tmp, 'cache');
  const built = await buildCache({ dir, host, objects, size, segmentSize: 64 * 1024 * 1024 });
  const layout = layoutOf(dir);
  const indexBytes = (await stat(layout.indexPath)).blocks * 512;
  console.log(`${objects} entries of ${size}-byte objects: built in ${fixed(built.ms / 1000, 0)} s, index ${fixed(indexBytes / 1024 ** 2, 0)} MiB, ${fixed(indexBytes / objects, 0)} B per entry on disk; load ${os.loadavg()[0]!.toFixed(1)}`);
  const env = open({ path: layout.indexPath, noSubdir: true, readOnly: true, maxDbs: 8 });
  const tree = env.openDB('objects', { keyEncoding: 'binary', encoding: 'binary' }).getStats() as { treeDepth: number; treeLeafPageCount: number; treeBranchPageCount: number; overflowPages: number };
  console.log(`objects database: depth ${tree.treeDepth}, ${tree.treeLeafPageCount} leaf pages (${fixed(objects / tree.treeLeafPageCount, 1)} entries a page), ${tree.treeBranchPageCount} branch pages, ${tree.overflowPages} overflow pages`);
  await env.close();
  const index = DiskIndex.open({ path: layout.indexPath, readOnly: true, pathOf: (key) => pathOfKey(splitStoredKey(key).primary) });
  let seed = 12345;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const randomKeys = () => Array.from({ length: lookups }, () => keyOf(Math.floor(random() * objects)));
  const hot = Array.from({ length: 1000 }, (_, i) => keyOf(i));
  const hotKeys = Array.from({ length: lookups }, (_, i) => hot[i % hot.length]!);
  const first = round(index, randomKeys());
  const random_: OpRound[] = [];
  const memo: OpRound[] = [];
  for (let r = 0; r < rounds; r++) {
    random_.push(round(index, randomKeys()));
    memo.push(round(index, hotKeys));
  }
  console.log(summary('first round, random keys', [first]));
  console.log(summary(`random keys, ${rounds} rounds`, random_));
  console.log(summary(`1,000 keys again and again, ${rounds} rounds`, memo));
  console.log(`load average at end: ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}`);
  await index.close();
} finally {
  await rm(tmp, { recursive: true, force: true });
}
