/**
 * Disk cache benchmark: the anycdn edge against nginx `proxy_cache` in the same run, both in front
 * of the same counting origin (test/bench/counting-origin.ts), nginx with 2 worker processes,
 * `levels=1:2 use_temp_path=off`, keep-alive upstream, access logs off on both sides; anycdn with
 * `workers: 2` and as one process.
 *
 *   npm run build && node dist/test/bench/disk.js [--cold 20000] [--cold-large 4000] [--cold-warm 5000] [--hit-seconds 5] [--hit-warmup 3] [--hit-objects 0] [--hit-head plain|browser] [--hit-base DIR]
 *        [--reps 2] [--scale 1000000] [--scale-small 10000] [--crash 100000] [--skip cold,hits,scale,crash]
 *        [--index 10000000 --index-small 10000 --index-size 256 --index-verify 2000 --index-memory-max-entry 1KiB --index-hits-over 10000 --index-warm 1]
 *        [--index-rounds 5 --index-inflight 1,4,16 --index-hit-seconds 5 --index-miss-seconds 2 --index-log-sample 1 --index-pin-client CPU]
 *        [--startup 20000 --startup-runs 5]
 *        [--cpu 3000 --cpu-size 2048 --cpu-reps 2 [--cpu-warm 3000] [--cpu-workers 2,1] [--cpu-base DIR] --edge-node-args='--cpu-prof --cpu-prof-dir=DIR']
 *
 * 1. Cold misses (test/bench/disk-cold.ts): after a warm-up of `--cold-warm` M distinct objects per serving process
 *    (not counted; for the 50 KiB objects M is scaled as N is), N others each requested once by 64
 *    concurrent keep-alive clients: objects stored per second and CPU per miss of nginx, anycdn and
 *    the bare-Node miss reference (test/bench/miss-reference.ts); the origin's counter must move by
 *    exactly M + N; every 50th body is compared with what the origin sent.
 * 1b. CPU per cold miss (with `--cpu N`, disk-cpu.ts): the edge with `workers: 2` and as one process, in turn
 *    (`--cpu-reps` rounds): a warm-up of N distinct objects of `--cpu-size` bytes, then N more,
 *    64 keep-alive clients; utime + stime of every edge process over the second N, per object
 *    (primary and workers apart). A fresh process runs unoptimised code for its first thousands of
 *    requests: the warm-up keeps that out. `--cpu-warm W`: a warm-up of W objects per serving
 *    process instead (with `workers: 2` each worker sees only about half of N, and runs and
 *    compiles unoptimised code for longer). `--edge-node-args` adds node flags (e.g. `--cpu-prof`).
 * 2. Disk hits (disk-hits.ts): one 50 KiB object kept out of memory (anycdn `memory.maxEntrySize: 1KiB`),
 *    `wrk -t2 -c64`: `--hit-warmup` seconds on each system first (reported apart: a fresh process
 *    runs unoptimised code), then `--hit-seconds`, `--reps` rounds, interleaved; req/s, p99 and
 *    the server's CPU time per request (every process of it). `--edge-node-args` applies here too.
 *    `--hit-objects N`: N objects of 50 KiB read at random instead of one (all pulled in first).
 *    `--hit-head browser`: wrk sends a browser's 13-field request head instead of its own two lines.
 *    `--hit-base DIR`: another checkout, built, whose edge (`workers: 2` and one process) runs in
 *    every round right after this tree's (interleaved, so the same load from other work falls on
 *    both), as `base-workers` and `base-1`.
 * 3. Scale: a cache of `--scale` 2 KiB objects written through the store's API (as misses would),
 *    then `anycdn edge` started on it: time from exec to the first 200 from disk, resident memory
 *    per object after one pass of hits (anonymous + shared, all edge processes; file-backed pages
 *    apart), and p99 of hits and misses (and the CPU of every edge process per hit), against the
 *    same edge over `--scale-small` objects.
 * 3b. Index (with `--index N`): a cache of N objects of `--index-size` bytes built by
 *    disk-build.ts (the store's own format and functions, one LMDB transaction per 20,000 entries:
 *    ten million in minutes, where the store's API takes hours), then `anycdn edge` started on it
 *    with `workers: 2` and as one process: start, memory (anonymous + shared, and file-backed
 *    apart), p99 of hits over random objects and of misses, against `--index-small` objects;
 *    `--index-verify` random objects read back (200, the bytes, no origin GET); the index's size
 *    on disk and the build time. At `--index-small` objects every hit is a memory hit, at a
 *    million nearly every one a disk hit: `--index-memory-max-entry 1KiB` keeps objects out of
 *    memory, so both sizes compare disk hits. Even so, at `--index-small` objects each is hit
 *    again and again within the 5 s, at a million nearly every hit is the first of its object in
 *    the process (its per-object memos cold: test/bench/disk-first-touch.ts); `--index-hits-over
 *    N` draws the hits from N objects spread over each cache, so both sizes compare the same
 *    working set; but over a large index each process still maps a page of it on the first read
 *    of nearly every object (a page fault each; at 10,000 entries ten objects share a page), and
 *    `--index-warm S` (default 1) seconds of hits before the measured 5 s decide how many of those
 *    first reads fall in the measured window: long enough for every process to have read every
 *    object, only the index's size differs. Page faults per hit are reported beside the CPU.
 *    `--edge-node-args` applies (e.g. `--cpu-prof`).
 *    With `--index-rounds R` (disk-index-rounds.ts) instead: both caches built and kept, an edge
 *    started on each (both running; fresh for `workers: 2`, then for one process) and reused for
 *    every round; after the read-back and the `--index-warm` seconds of hits at 16 in flight on
 *    each, R rounds of `--index-hit-seconds` of hits at each count of `--index-inflight` on both
 *    sizes in turn (the order swapped every round); after all hits, on edges started again, R
 *    rounds of `--index-miss-seconds` of misses (0: none). A p99 at 16 in flight on 2 cores
 *    shared with the client is mostly queueing: at 1 in flight it is the request's own time, and
 *    the edge's access log (every `--index-log-sample`th request) gives the edge's own time of
 *    each request (`durationMs`: from the request read to the answer handed to the socket,
 *    without the wait before it was read). Per round and as the median over the rounds
 *    (min–max): client p99 and p50, edge p99 and p50, requests/s, CPU and page faults a request;
 *    the ratios large / small of the medians and within a round. `--index-pin-client CPU`: the
 *    benchmark's process (the client) pinned there while it measures (the edges not).
 * 3c. Start-up (with `--startup N`): exec → first 200 from disk alone, `--startup-runs` starts
 *    each of `workers: 2` and one process in turn over N objects of 256 bytes built as in 3b
 *    (quick: `--startup 20000 --skip cold,hits,scale,crash`; nginx and wrk are not needed then).
 * 4. Crash: a fill of `--crash` objects through the edge (`workers: 2`), kill -9 of every edge
 *    process halfway, a restart, and every object read back: corrupt or partial answers (must be
 *    0), and objects answered before the kill that are no longer stored (lost).
 *
 * Every process is stopped by PID; temp folders are removed. Numbers depend on the machine and on
 * what else runs on it: the report prints the load average and compares systems in the same run.
 */
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { DiskBlobStore } from '../../src/blob/disk-blob-store.js';
import { layoutOf } from '../../src/blob/disk-layout.js';
import { closedLoop, fixed, httpGetter, median, REPO_ROOT } from './bench-lib.js';
import { objectBody } from './counting-origin.js';
import { benchMeta, benchPath, buildCache } from './disk-build.js';
import { freePort, hasCommand, processTree, startEdge, treeMemory, type ServerProcess } from './edge-peers.js';
import { coldMisses, startSystem, type SystemName } from './disk-cold.js';
import { diskHits } from './disk-hits.js';
import { coldMissCpu } from './disk-cpu.js';
import { indexRounds, parseInFlight, type IndexRoundsOptions } from './disk-index-rounds.js';
import { hitPicker, launchEdge, verifyStored, type CountingOrigin, type EdgeStart } from './disk-edge.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const env = { ...process.env, MALLOC_ARENA_MAX: '2' };
const started: ServerProcess[] = [];

type Origin = CountingOrigin;

async function startOrigin(): Promise<Origin> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'dist/test/bench/counting-origin.js')], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`counting origin exited (${code})`)));
  });
  const { url } = JSON.parse(line) as { url: string };
  const client = httpGetter(url, 1);
  const origin: Origin = {
    label: 'counting origin',
    pid: child.pid!,
    url,
    logs: [],
    served: async () => (JSON.parse((await client.get('/_count')).toString()) as { served: number }).served,
    stop: async () => {
      await client.close();
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
  started.push(origin);
  return origin;
}

async function stop(s: ServerProcess): Promise<void> {
  started.splice(started.indexOf(s), 1);
  await s.stop();
}

const report: string[] = [];
const say = (line: string) => {
  console.log(line);
  report.push(line);
};

// ---------------------------------------------------------------- 2. disk hits

// ---------------------------------------------------------------- 3. scale

/** Writes `n` objects as the edge would store misses from `origin` at `host`, through the store's API. */
async function fillStore(cacheDir: string, host: string, n: number): Promise<number> {
  const store = await DiskBlobStore.open({ dir: cacheDir, maxBytes: 10 * 1024 ** 3, maxEntrySize: 1024 ** 3 });
  const t0 = performance.now();
  let next = 0;
  const now = Date.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n) {
        const i = next++;
        const path = benchPath(i, 2 * KiB);
        const body = objectBody(path)!;
        const key = `${host}${path}`;
        const w = (await store.begin(key, body.length))!;
        await w.write(body);
        await w.commit(benchMeta(key, i, body.length, now));
        if (i % 100_000 === 0 && i > 0) console.log(`  filled ${i} (${fixed((i / (performance.now() - t0)) * 1000, 0)}/s)`);
      }
    }),
  );
  await store.close();
  return performance.now() - t0;
}

interface EdgeResult {
  startMs: number;
  anon: number;
  file: number;
  anonAtStart: number;
  fileAtStart: number;
  hitP99: number;
  missP99: number;
  hitRate: number;
  /** CPU time (user + system) of every edge process over the measured window, per hit answered in it. */
  hitCpuUs: number;
  /**
   * Minor page faults of every edge process over the measured window, per hit: a process
   * maps each page of the index it reads on first touch (one fault maps a few neighbours too), so
   * hits spread over a large index fault where the same hits over a small one find pages mapped.
   */
  hitFaults: number;
  verified: number;
}

interface ScaleResult extends EdgeResult {
  objects: number;
  fillS: number;
  anonPerObject: number;
}

/** launchEdge's time to the first 200 from disk; the edge is stopped. */
async function timeStart(o: EdgeStart): Promise<number> {
  const { edge, startMs } = await launchEdge(o, env, started);
  await stop(edge);
  return startMs;
}

/**
 * launchEdge, then `verify` random objects read back (status 200, body bytes); one pass of hits
 * over random objects, then memory; then p99 of hits and of misses. Stops the edge.
 */
async function measureEdge(o: EdgeStart & { verify: number }): Promise<EdgeResult> {
  const { edge, pid, startMs } = await launchEdge(o, env, started);
  const child = { pid };
  const atStart = treeMemory(child.pid!);
  const random = hitPicker(o);
  const getter = httpGetter(edge.url, 16);
  // Every entry read back must be the object, from the cache: the origin is not asked.
  await verifyStored(getter, o.origin, o.verify, random, `scale ${o.n}`);
  const ticks = () => processTree(child.pid).reduce((sum, p) => sum + p.ticks, 0);
  const faults = () => processTree(child.pid).reduce((sum, p) => sum + p.minorFaults, 0);
  const warmupMs = o.hitWarmupMs ?? 1000;
  // CPU and faults from the end of the warm-up on, per hit answered in the measured window.
  const atWindow = new Promise<[number, number]>((resolve) => setTimeout(() => resolve([ticks(), faults()]), warmupMs));
  const hits = await closedLoop({ inFlight: 16, durationMs: 5000, warmupMs, op: async () => (await getter.get(random())).length });
  const [ticksBefore, faultsBefore] = await atWindow;
  const hitCpuUs = ((ticks() - ticksBefore) * 10_000) / hits.ops;
  const hitFaults = (faults() - faultsBefore) / hits.ops;
  const mem = treeMemory(child.pid!);
  let missId = 0;
  const before = await o.origin.served();
  const misses = await closedLoop({ inFlight: 16, durationMs: 5000, warmupMs: 500, op: async () => (await getter.get(`/m/${o.n}-${o.workers}/${missId++}-${o.size}.bin`)).length });
  const missFetched = (await o.origin.served()) - before;
  await getter.close();
  await stop(edge);
  if (missFetched < misses.ops) throw new Error(`scale ${o.n}: ${misses.ops} misses but the origin served ${missFetched}`);
  return { startMs, anon: mem.anon + mem.shmem, file: mem.file, anonAtStart: atStart.anon + atStart.shmem, fileAtStart: atStart.file, hitP99: hits.p99Ms, missP99: misses.p99Ms, hitRate: hits.opsPerSec, hitCpuUs, hitFaults, verified: o.verify };
}

async function scaleOne(tmp: string, origin: Origin, n: number): Promise<ScaleResult> {
  const dir = join(tmp, `scale-${n}`);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const fillMs = await fillStore(join(dir, 'cache'), host, n);
  const r = await measureEdge({ dir, cacheDir: join(dir, 'cache'), host, n, size: 2 * KiB, workers: 2, origin, maxBytes: '10GiB', verify: 0 });
  await rm(dir, { recursive: true, force: true });
  return { ...r, objects: n, fillS: fillMs / 1000, anonPerObject: r.anon / n };
}

async function scale(tmp: string, origin: Origin, sizes: number[]): Promise<void> {
  const results: ScaleResult[] = [];
  for (const n of sizes) {
    results.push(await scaleOne(tmp, origin, n));
    console.log(`  scale ${n}: ${JSON.stringify(results.at(-1))}`);
  }
  say('');
  say('#### Scale: 2 KiB objects written through the store, then `anycdn edge` (`workers: 2`) started on them');
  say('');
  say('| objects | exec → first 200 from disk | RssAnon+RssShmem, all processes | per object | RssFile | hit p99 (16 in flight) | hits/s | CPU a hit | miss p99 |');
  say('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const r of results) {
    say(`| ${r.objects} | ${fixed(r.startMs, 0)} ms | ${fixed(r.anon / MiB, 0)} MiB | ${fixed(r.anonPerObject, 0)} B | ${fixed(r.file / MiB, 0)} MiB | ${fixed(r.hitP99, 2)} ms | ${fixed(r.hitRate, 0)} | ${fixed(r.hitCpuUs, 0)} µs | ${fixed(r.missP99, 2)} ms |`);
  }
  if (results.length >= 2) {
    const [small, large] = [results[0]!, results.at(-1)!];
    say(`p99 at ${large.objects} / at ${small.objects} objects: hits ${fixed(large.hitP99 / small.hitP99, 2)}, misses ${fixed(large.missP99 / small.missP99, 2)} (target: within 1.2)`);
    // The processes' own baseline (code, heaps, buffers) divided by few objects says nothing: what grows with the objects does.
    say(`anonymous memory growth per object from ${small.objects} to ${large.objects} objects: ${fixed((large.anon - small.anon) / (large.objects - small.objects), 1)} B`);
  }
}

// ---------------------------------------------------------------- 3b. index of many entries

type IndexEdge = Pick<EdgeStart, 'memoryMaxEntrySize' | 'nodeArgs' | 'hitsOver' | 'hitWarmupMs'>;

interface IndexResult {
  objects: number;
  buildS: number;
  indexBytes: number;
  segmentBytes: number;
  load: string;
  runs: { workers: number; r: EdgeResult; load: string }[];
}

const loadNow = () => os.loadavg()[0]!.toFixed(1);

/** Allocated bytes of the files under `dir` (one level: the segments). */
async function allocatedUnder(dir: string): Promise<number> {
  let total = 0;
  for (const name of await readdir(dir)) total += (await stat(join(dir, name))).blocks * 512;
  return total;
}

/** A cache folder of `n` objects of `size` bytes built by disk-build.ts (the store's format and functions, large transactions). */
async function buildIndex(tmp: string, n: number, size: number): Promise<{ dir: string; cacheDir: string; host: string; result: IndexResult }> {
  const dir = join(tmp, `index-${n}`);
  await mkdir(dir, { recursive: true });
  const host = `127.0.0.1:${await freePort()}`;
  const cacheDir = join(dir, 'cache');
  const load = loadNow();
  const built = await buildCache({
    dir: cacheDir,
    host,
    objects: n,
    size,
    segmentSize: 64 * MiB,
    onProgress: (done) => {
      if (done % 1_000_000 === 0) console.log(`  built ${done} (load ${loadNow()})`);
    },
  });
  const { indexPath, segmentDir } = layoutOf(cacheDir);
  const layout = { index: indexPath, seg: segmentDir };
  const result: IndexResult = { objects: n, buildS: built.ms / 1000, indexBytes: (await stat(layout.index)).blocks * 512, segmentBytes: await allocatedUnder(layout.seg), load: `${load}–${loadNow()}`, runs: [] };
  console.log(`  index ${n}: built in ${fixed(result.buildS, 0)} s, index ${fixed(result.indexBytes / MiB, 0)} MiB, segments ${fixed(result.segmentBytes / MiB, 0)} MiB`);
  return { dir, cacheDir, host, result };
}

/**
 * buildIndex, then `anycdn edge` started on it with `workers: 2` and as one process: start,
 * memory, hit and miss p99, `verify` random objects read back.
 */
async function indexOne(tmp: string, origin: Origin, n: number, size: number, verify: number, edge: IndexEdge): Promise<IndexResult> {
  const { dir, cacheDir, host, result } = await buildIndex(tmp, n, size);
  try {
    for (const workers of [2, 1]) {
      const at = loadNow();
      const r = await measureEdge({ dir, cacheDir, host, n, size, workers, origin, maxBytes: '40GiB', verify, ...edge });
      result.runs.push({ workers, r, load: `${at}–${loadNow()}` });
      console.log(`  index ${n}, workers ${workers}: ${JSON.stringify(r)}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return result;
}

/** Both caches built and kept, then the interleaved rounds of disk-index-rounds.ts (`--index-rounds`). */
async function indexRoundsOf(tmp: string, origin: Origin, sizes: number[], size: number, verify: number, options: Omit<IndexRoundsOptions, 'origin' | 'env' | 'started' | 'caches' | 'size' | 'verify'>): Promise<void> {
  const caches: IndexRoundsOptions['caches'][number][] = [];
  try {
    for (const n of sizes) {
      const { dir, cacheDir, host, result } = await buildIndex(tmp, n, size);
      caches.push({ n, dir, cacheDir, host });
      say(`- index ${n}: built in ${fixed(result.buildS, 0)} s (load ${result.load}), index ${fixed(result.indexBytes / MiB, 0)} MiB on disk, segments ${fixed(result.segmentBytes / MiB, 0)} MiB`);
    }
    for (const line of await indexRounds({ ...options, origin, env, started, caches, size, verify })) say(line);
  } finally {
    for (const c of caches) await rm(c.dir, { recursive: true, force: true });
  }
}

async function indexScale(tmp: string, origin: Origin, sizes: number[], size: number, verify: number, edge: IndexEdge): Promise<void> {
  const results: IndexResult[] = [];
  for (const n of sizes) results.push(await indexOne(tmp, origin, n, size, verify, edge));
  say('');
  const memory = edge.memoryMaxEntrySize === undefined ? '' : `, \`memory.maxEntrySize: ${edge.memoryMaxEntrySize}\` (every hit a disk hit)`;
  const over = edge.hitsOver === undefined ? '' : `; hits over ${edge.hitsOver} objects spread over each cache`;
  say(`#### Index: ${size}-byte objects built by test/bench/disk-build.ts, then \`anycdn edge\` started on them${memory}; ${verify} random objects read back per start${over}; ${fixed((edge.hitWarmupMs ?? 1000) / 1000, 0)} s of hits before the measured ones`);
  say('');
  say('| objects | build (load) | index on disk | segments | edge | exec → first 200 from disk | RssAnon+RssShmem at first 200 / after hits | RssFile at first 200 / after hits | hit p99 (16 in flight) | hits/s | CPU a hit | page faults a hit | miss p99 | load |');
  say('| ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
  for (const x of results) {
    for (const { workers, r, load } of x.runs) {
      say(`| ${x.objects} | ${fixed(x.buildS, 0)} s (${x.load}) | ${fixed(x.indexBytes / MiB, 0)} MiB | ${fixed(x.segmentBytes / MiB, 0)} MiB | ${workers === 1 ? '1 process' : `workers: ${workers}`} | ${fixed(r.startMs, 0)} ms | ${fixed(r.anonAtStart / MiB, 0)} / ${fixed(r.anon / MiB, 0)} MiB | ${fixed(r.fileAtStart / MiB, 0)} / ${fixed(r.file / MiB, 0)} MiB | ${fixed(r.hitP99, 2)} ms | ${fixed(r.hitRate, 0)} | ${fixed(r.hitCpuUs, 0)} µs | ${fixed(r.hitFaults, 2)} | ${fixed(r.missP99, 2)} ms | ${load} |`);
    }
  }
  if (results.length >= 2) {
    const [small, large] = [results[0]!, results.at(-1)!];
    for (const workers of [2, 1]) {
      const a = small.runs.find((x) => x.workers === workers)!.r;
      const b = large.runs.find((x) => x.workers === workers)!.r;
      say(`${workers === 1 ? '1 process' : `workers: ${workers}`}: p99 at ${large.objects} / at ${small.objects} objects: hits ${fixed(b.hitP99 / a.hitP99, 2)}, misses ${fixed(b.missP99 / a.missP99, 2)} (target: within 1.2); RssAnon+RssShmem after hits ${fixed(b.anon / large.objects, 1)} B per object, growth ${fixed((b.anon - a.anon) / (large.objects - small.objects), 2)} B per object; index ${fixed(large.indexBytes / large.objects, 0)} B per entry on disk`);
    }
  }
}

// ---------------------------------------------------------------- 3c. start-up alone

/**
 * Exec → first 200 from disk alone, `runs` times each for `workers: 2` and one process (taken in
 * turn, so both see the same load), over a cache of `n` objects built once by disk-build.ts; the
 * load average beside every start, since a start is CPU-bound and other work on the machine moves it.
 */
async function startup(tmp: string, origin: Origin, n: number, runs: number): Promise<void> {
  const dir = join(tmp, `startup-${n}`);
  await mkdir(dir, { recursive: true });
  const host = `127.0.0.1:${await freePort()}`;
  const cacheDir = join(dir, 'cache');
  await buildCache({ dir: cacheDir, host, objects: n, size: 256, segmentSize: 64 * MiB });
  const times: Record<number, { ms: number; load: string }[]> = { 2: [], 1: [] };
  try {
    for (let run = 0; run < runs; run++) {
      for (const workers of [2, 1]) {
        const load = loadNow();
        const ms = await timeStart({ dir, cacheDir, host, n, size: 256, workers, origin, maxBytes: '10GiB' });
        times[workers]!.push({ ms, load });
        console.log(`  start-up ${n} objects, workers ${workers}: ${fixed(ms, 0)} ms (load ${load})`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  say('');
  say(`#### Start-up: exec of \`anycdn edge\` → first 200 from disk, ${n} objects of 256 bytes, ${runs} starts each (node ${process.version})`);
  say('');
  say('| edge | median | min | max | every start (load average at its exec) |');
  say('| --- | ---: | ---: | ---: | --- |');
  for (const workers of [2, 1]) {
    const ms = times[workers]!.map((t) => t.ms);
    const each = times[workers]!.map((t) => `${fixed(t.ms, 0)} (${t.load})`).join(', ');
    say(`| ${workers === 1 ? '1 process' : `workers: ${workers}`} | ${fixed(median(ms), 0)} ms | ${fixed(Math.min(...ms), 0)} ms | ${fixed(Math.max(...ms), 0)} ms | ${each} |`);
  }
}

// ---------------------------------------------------------------- 4. crash

async function crash(tmp: string, origin: Origin, n: number): Promise<void> {
  const dir = join(tmp, 'crash');
  const port = await freePort();
  const config = { listen: `127.0.0.1:${port}`, memory: { maxEntrySize: '1KiB' } };
  const paths = Array.from({ length: n }, (_, i) => `/k/${i}-${2 * KiB}.bin`);
  let edge = await startSystem('anycdn-workers', dir, origin.url, env, started, config);
  const getter = httpGetter(edge.url, 64);
  const answered = new Set<number>();
  let next = 0;
  let killed = false;
  const fill = Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < n && !killed) {
        const i = next++;
        try {
          await getter.get(paths[i]!);
          if (!killed) answered.add(i);
        } catch {
          // the kill cut it
        }
      }
    }),
  );
  while (answered.size < n / 2) await new Promise((r) => setTimeout(r, 5));
  const tree = processTree(edge.pid).map((p) => p.pid);
  killed = true;
  for (const pid of tree) process.kill(pid, 'SIGKILL');
  const atKill = answered.size;
  await fill;
  await getter.close().catch(() => undefined);
  started.splice(started.indexOf(edge), 1);
  await new Promise((r) => setTimeout(r, 500));
  edge = await startSystem('anycdn-workers', dir, origin.url, env, started, config);
  const reader = httpGetter(edge.url, 32);
  let corrupt = 0;
  let lost = 0;
  let kept = 0;
  const before = await origin.served();
  let j = 0;
  await Promise.all(
    Array.from({ length: 32 }, async () => {
      while (j < n) {
        const i = j++;
        const res = await fetch(`${edge.url}${paths[i]}`);
        const body = Buffer.from(await res.arrayBuffer());
        if (res.status !== 200 || !body.equals(objectBody(paths[i]!)!)) corrupt += 1;
        const hit = (res.headers.get('cache-status') ?? '').startsWith('anycdn; hit');
        if (hit) kept += 1;
        else if (answered.has(i)) lost += 1;
      }
    }),
  );
  const refetched = (await origin.served()) - before;
  await reader.close();
  await stop(edge);
  say('');
  say(`#### Crash: kill -9 of every edge process (\`workers: 2\`) during a fill of ${n} × 2 KiB objects, restart, read every object`);
  say('');
  say(`answered before the kill: ${atKill}; after the restart: ${kept} served from the cache, ${lost} of those answered before the kill had to be fetched again (lost), ${corrupt} corrupt or partial answers; origin GETs during the read-back: ${refetched}`);
}

// ---------------------------------------------------------------- main

/** The hit section's systems: those of disk-cold.ts, and another checkout's edge (`--hit-base`). */
type HitSystem = SystemName | 'base-workers' | 'base-1';

const isBase = (name: HitSystem): name is 'base-workers' | 'base-1' => name === 'base-workers' || name === 'base-1';

/** The edge of the checkout at `root` (built), configured as this tree's in the hit section. */
async function startBaseEdge(name: 'base-workers' | 'base-1', dir: string, root: string, origin: string, config: Record<string, unknown>, nodeArgs: string[]): Promise<ServerProcess> {
  const workers = name === 'base-workers' ? 2 : 1;
  const s = await startEdge(dir, { upstream: origin, env, accessLog: 'off', nodeArgs, workers, cli: join(root, 'dist/src/cli/anycdn.cjs'), config: { logLevel: 'warn', ...config } });
  started.push(s);
  return s;
}

function hitHead(value: string): 'plain' | 'browser' {
  if (value !== 'plain' && value !== 'browser') throw new Error(`--hit-head: plain or browser, not ${JSON.stringify(value)}`);
  return value;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      cold: { type: 'string', default: '20000' },
      'cold-large': { type: 'string', default: '4000' },
      'cold-warm': { type: 'string', default: '5000' },
      'hit-seconds': { type: 'string', default: '5' },
      'hit-warmup': { type: 'string', default: '3' },
      'hit-objects': { type: 'string', default: '0' },
      'hit-head': { type: 'string', default: 'plain' },
      'hit-base': { type: 'string' },
      reps: { type: 'string', default: '2' },
      scale: { type: 'string', default: '1000000' },
      'scale-small': { type: 'string', default: '10000' },
      crash: { type: 'string', default: '100000' },
      index: { type: 'string', default: '0' },
      startup: { type: 'string', default: '0' },
      'startup-runs': { type: 'string', default: '5' },
      'index-small': { type: 'string', default: '10000' },
      'index-size': { type: 'string', default: '256' },
      'index-verify': { type: 'string', default: '2000' },
      'index-memory-max-entry': { type: 'string', default: '' },
      'index-hits-over': { type: 'string', default: '' },
      'index-warm': { type: 'string', default: '1' },
      'index-rounds': { type: 'string', default: '0' },
      'index-inflight': { type: 'string', default: '1,4,16' },
      'index-hit-seconds': { type: 'string', default: '5' },
      'index-miss-seconds': { type: 'string', default: '2' },
      'index-log-sample': { type: 'string', default: '1' },
      'index-pin-client': { type: 'string', default: '' },
      skip: { type: 'string', default: '' },
      cpu: { type: 'string', default: '0' },
      'cpu-size': { type: 'string', default: '2048' },
      'cpu-reps': { type: 'string', default: '2' },
      'cpu-warm': { type: 'string', default: '' },
      'cpu-workers': { type: 'string', default: '2,1' },
      'cpu-base': { type: 'string' },
      'edge-node-args': { type: 'string', default: '' },
      tmp: { type: 'string', default: os.tmpdir() },
    },
  });
  const skip = new Set(values.skip.split(',').filter(Boolean));
  const needsPeers = ['cold', 'hits'].some((part) => !skip.has(part));
  for (const tool of needsPeers ? ['nginx', 'wrk'] : []) if (!hasCommand(tool)) throw new Error(`${tool} is not installed (apt-get install -y nginx wrk)`);
  say(`- date: ${new Date().toISOString()}; ${os.availableParallelism()} CPUs, ${fixed(os.totalmem() / 2 ** 30, 1)} GiB; node ${process.version}; load average ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
  say(`- command: node dist/test/bench/disk.js ${process.argv.slice(2).join(' ')}`);
  const tmp = await mkdtemp(join(values.tmp, 'anycdn-bench-disk-'));
  if (process.getuid?.() === 0) await chmod(tmp, 0o755); // nginx workers (nobody) must reach their folders
  const onSignal = () => void Promise.all(started.map((s) => s.stop().catch(() => undefined))).finally(() => process.exit(130));
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const origin = await startOrigin();
    const reps = Number(values.reps);
    const nodeArgs = values['edge-node-args'].split(' ').filter(Boolean);
    if (!skip.has('cold')) for (const line of await coldMisses(tmp, origin, { small: Number(values.cold), large: Number(values['cold-large']), warm: Number(values['cold-warm']), reps }, env, started)) say(line);
    if (Number(values.cpu) > 0) {
      const warmPerProcess = values['cpu-warm'] === '' ? undefined : Number(values['cpu-warm']);
      const cpuOptions = { objects: Number(values.cpu), size: Number(values['cpu-size']), reps: Number(values['cpu-reps']), nodeArgs, warmPerProcess, workers: values['cpu-workers'].split(',').map(Number), base: values['cpu-base'] };
      for (const line of await coldMissCpu(join(tmp, 'cpu'), origin.url, env, cpuOptions, started)) say(line);
    }
    if (!skip.has('hits')) {
      const config = { memory: { maxEntrySize: '1KiB' } };
      const base = values['hit-base'];
      const start = (name: HitSystem) => (isBase(name) ? startBaseEdge(name, join(tmp, `hits-${name}`), base!, origin.url, config, nodeArgs) : startSystem(name, join(tmp, `hits-${name}`), origin.url, env, started, config, nodeArgs));
      const hitOptions = { seconds: Number(values['hit-seconds']), warmup: Number(values['hit-warmup']), reps, served: () => origin.served(), objects: Number(values['hit-objects']), head: hitHead(values['hit-head']) };
      const names: HitSystem[] = base === undefined ? ['nginx', 'anycdn-workers', 'anycdn-1'] : ['nginx', 'anycdn-workers', 'base-workers', 'anycdn-1', 'base-1'];
      for (const line of await diskHits(names, start, stop, hitOptions)) say(line);
    }
    if (!skip.has('scale')) await scale(tmp, origin, [Number(values['scale-small']), Number(values.scale)]);
    if (Number(values.startup) > 0) await startup(tmp, origin, Number(values.startup), Number(values['startup-runs']));
    if (Number(values.index) > 0) {
      const edge = { memoryMaxEntrySize: values['index-memory-max-entry'] || undefined, nodeArgs, hitsOver: values['index-hits-over'] === '' ? undefined : Number(values['index-hits-over']), hitWarmupMs: Number(values['index-warm']) * 1000 };
      const sizes = [Number(values['index-small']), Number(values.index)];
      const rounds = Number(values['index-rounds']);
      if (rounds === 0) await indexScale(tmp, origin, sizes, Number(values['index-size']), Number(values['index-verify']), edge);
      else {
        const inFlight = parseInFlight(values['index-inflight']);
        const pinClient = values['index-pin-client'] === '' ? undefined : Number(values['index-pin-client']);
        const windows = { hitMs: Number(values['index-hit-seconds']) * 1000, missMs: Number(values['index-miss-seconds']) * 1000 };
        await indexRoundsOf(tmp, origin, sizes, Number(values['index-size']), Number(values['index-verify']), { edge, rounds, inFlight, ...windows, logSample: Number(values['index-log-sample']), pinClient });
      }
    }
    if (!skip.has('crash')) await crash(tmp, origin, Number(values.crash));
    say(`- load average at end: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`);
    console.log(`\n${report.join('\n')}`);
  } finally {
    for (const s of [...started].reverse()) await s.stop().catch(() => undefined);
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
