/**
 * Disk-hit soak: does the edge's anonymous memory level off under sustained hits spread over many
 * distinct objects, or keep growing?
 *
 *   npm run build && node dist/test/bench/disk-soak.js [--objects 10000,100000] [--workers 2,1] [--seconds 180]
 *        [--miss-share 0] [--in-flight 16] [--size 2048] [--sample 5] [--flat-below 2]
 *        [--edge-node-args='--max-semi-space-size=4'] [--edge-env MALLOC_ARENA_MAX=2] [--base DIR --rounds 2]
 *
 * For each object count N and each `workers` setting: a cache of N objects of `--size` bytes built
 * by disk-build.ts (the store's own format), `anycdn edge` started on it with
 * `memory.maxEntrySize: 1KiB` (so every hit is a disk hit), then `--in-flight` keep-alive clients
 * ask for objects at random over all N for `--seconds`; with `--miss-share p` a share p of the
 * requests ask for an object never asked before (a miss: fetched from the counting origin and
 * stored, so the cache grows by that many objects). Every `--sample` seconds: RssAnon, RssShmem
 * and RssFile of every edge process from /proc, and V8's heap (used and total) and external
 * memory summed over the processes from the edge's /_cdn/metrics.
 *
 * Printed: the series, then per run the level at the end, per process, per stored object, and
 * the least-squares slope of RssAnon+RssShmem (all processes), of V8's used heap and of external
 * memory over the second half. The first half is left out on purpose: memory climbs while V8
 * sizes its heap to the working set (one process over 10,000 objects: ~60 MB live after a
 * mark-compact, the old generation let grow to ~170 MB before the next, BENCHMARKS.md) and
 * external memory saw-tooths up to the 64 MB of growth at which V8 collects; that climb stops, a
 * leak does not. It stops after a number of hits, not of seconds: each worker of `workers: 2`
 * sees half of them, and on a busy machine a 150–180 s soak still shows the heap's limit creeping
 * (8–21 MiB/min for one process): read the band of the second half as well as the verdict,
 * "flat" when the second-half slope is under `--flat-below` MiB/min.
 *
 * Also printed: the CPU time (user + system) of every edge process per request over the whole
 * soak, and the lowest V8 heap used and external memory sampled in the second half (nearest to
 * what a mark-compact leaves: what is live, where the rest is garbage not yet collected).
 *
 * `--base DIR`: another checkout, built, whose edge soaks right after this tree's in each of
 * `--rounds` rounds (each on a cache built afresh), so that the same load from other work falls
 * on both.
 *
 * The edge runs with MALLOC_ARENA_MAX=2 as the `anycdn` command sets it, unless `--edge-env`
 * says otherwise (`--edge-env MALLOC_ARENA_MAX=` to leave it unset). Numbers depend on what else
 * runs on the machine: the load average is printed with every sample.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { closedLoop, fixed, httpGetter, linearFit, loadAverage, REPO_ROOT } from './bench-lib.js';
import { objectBody } from './counting-origin.js';
import { benchPath, buildCache } from './disk-build.js';
import { freePort, processTree } from './edge-peers.js';

const MiB = 1024 * 1024;

interface ProcessMemory {
  pid: number;
  anon: number;
  shmem: number;
  file: number;
}

interface Sample {
  t: number;
  requests: number;
  processes: ProcessMemory[];
  /** Summed over the edge's processes, from its metrics (NaN when the scrape failed). */
  heapUsed: number;
  heapTotal: number;
  external: number;
  load: number;
}

interface SoakRun {
  /** 'this' or 'base' (--base). */
  tree: string;
  objects: number;
  workers: number;
  seconds: number;
  samples: Sample[];
  requests: number;
  misses: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time of every edge process per request, µs. */
  cpuUsPerRequest: number;
}

/** RssAnon, RssShmem and RssFile of one process from /proc/PID/status; undefined once it is gone. */
function processMemory(pid: number): ProcessMemory | undefined {
  let status: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
  } catch {
    return undefined;
  }
  const bytes = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
  return { pid, anon: bytes('RssAnon'), shmem: bytes('RssShmem'), file: bytes('RssFile') };
}

/** The sum of a metric's samples in Prometheus text, over its label sets (a cluster labels them by tier); NaN when absent. */
function metric(text: string, name: string): number {
  const lines = text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return lines.length === 0 ? NaN : lines.reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

async function heapMetrics(url: string): Promise<Pick<Sample, 'heapUsed' | 'heapTotal' | 'external'>> {
  try {
    const text = await (await fetch(`${url}/_cdn/metrics`)).text();
    return {
      heapUsed: metric(text, 'anycdn_edge_nodejs_heap_size_used_bytes'),
      heapTotal: metric(text, 'anycdn_edge_nodejs_heap_size_total_bytes'),
      external: metric(text, 'anycdn_edge_nodejs_external_memory_bytes'),
    };
  } catch {
    return { heapUsed: NaN, heapTotal: NaN, external: NaN };
  }
}

const anonOf = (s: Sample) => s.processes.reduce((sum, p) => sum + p.anon + p.shmem, 0);
const fileOf = (s: Sample) => s.processes.reduce((sum, p) => sum + p.file, 0);

interface SoakOptions {
  tmp: string;
  originUrl: string;
  objects: number;
  workers: number;
  seconds: number;
  size: number;
  inFlight: number;
  missShare: number;
  sampleMs: number;
  nodeArgs: string[];
  env: NodeJS.ProcessEnv;
  tree: string;
  /** The checkout whose build runs (REPO_ROOT or --base). */
  root: string;
}

async function soak(o: SoakOptions): Promise<SoakRun> {
  const dir = join(o.tmp, `soak-${o.tree}-${o.objects}-${o.workers}`);
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const cacheDir = join(dir, 'cache');
  const segmentSize = 256 * MiB;
  const built = await buildCache({ dir: cacheDir, host, objects: o.objects, size: o.size, segmentSize });
  console.log(`  built ${o.objects} objects in ${fixed(built.ms / 1000)} s`);
  const config = { listen: host, upstream: o.originUrl, pop: 'bench', node: 'edge-1', cacheDir, logLevel: 'warn', accessLog: false, drain: 0, workers: o.workers, disk: { maxBytes: '10GiB' }, memory: { maxEntrySize: '1KiB' } };
  await writeFile(join(dir, 'edge.json'), JSON.stringify(config));
  const child = spawn(process.execPath, [...o.nodeArgs, join(o.root, 'dist/src/cli/anycdn.cjs'), 'edge', '--config', join(dir, 'edge.json')], { env: o.env, stdio: ['ignore', 'inherit', 'inherit'] });
  const exited = new Promise((r) => child.once('exit', r));
  const url = `http://${host}`;
  try {
    const probe = benchPath(0, o.size);
    for (let i = 0; ; i++) {
      const ok = await fetch(`${url}${probe}`).then(
        async (r) => r.status === 200 && Buffer.from(await r.arrayBuffer()).equals(objectBody(probe)!),
        () => false,
      );
      if (ok) break;
      if (i > 6000 || child.exitCode !== null) throw new Error(`edge over ${o.objects} objects: no 200 within 30 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
    const ticks = () => processTree(child.pid!).reduce((sum, p) => sum + p.ticks, 0);
    const ticksBefore = ticks();
    const getter = httpGetter(url, o.inFlight);
    let requests = 0;
    let misses = 0;
    const samples: Sample[] = [];
    const t0 = performance.now();
    const take = async (): Promise<void> => {
      const t = (performance.now() - t0) / 1000;
      const processes = processTree(child.pid!)
        .map((p) => processMemory(p.pid))
        .filter((m): m is ProcessMemory => m !== undefined);
      const sample = { t, requests, processes, ...(await heapMetrics(url)), load: os.loadavg()[0]! };
      samples.push(sample);
      const per = processes.map((p) => fixed((p.anon + p.shmem) / MiB, 0)).join('+');
      console.log(`  ${fixed(t, 0).padStart(4)} s ${String(requests).padStart(8)} req  anon+shmem ${fixed(anonOf(sample) / MiB, 0).padStart(4)} MiB (${per})  file ${fixed(fileOf(sample) / MiB, 0).padStart(4)}  heap used/total ${fixed(sample.heapUsed / MiB, 0)}/${fixed(sample.heapTotal / MiB, 0)}  external ${fixed(sample.external / MiB, 0)}  load ${fixed(sample.load, 2)}`);
    };
    await take();
    let sampling = Promise.resolve();
    const timer = setInterval(() => void (sampling = sampling.then(take)), o.sampleMs);
    const missPrefix = `/m/${o.objects}-${o.workers}-${port}`;
    let result;
    try {
      result = await closedLoop({
        inFlight: o.inFlight,
        durationMs: o.seconds * 1000,
        warmupMs: 0,
        op: async () => {
          const miss = o.missShare > 0 && Math.random() < o.missShare;
          const path = miss ? `${missPrefix}/${misses++}-${o.size}.bin` : benchPath(Math.floor(Math.random() * o.objects), o.size);
          const body = await getter.get(path);
          requests++;
          return body.length;
        },
      });
    } finally {
      clearInterval(timer);
      await sampling;
      await getter.close();
    }
    await take();
    const cpuUsPerRequest = ((ticks() - ticksBefore) * 10_000) / requests;
    return { tree: o.tree, cpuUsPerRequest, objects: o.objects, workers: o.workers, seconds: o.seconds, samples, requests, misses, p50Ms: result.p50Ms, p99Ms: result.p99Ms };
  } finally {
    child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  }
}

function secondHalfSlope(run: SoakRun, y: (s: Sample) => number): { slope: number; stderr: number } {
  const points = run.samples.filter((s) => s.t >= run.seconds / 2 && Number.isFinite(y(s))).map((s) => ({ x: s.t / 60, y: y(s) / MiB }));
  return linearFit(points);
}

function summary(run: SoakRun, flatBelow: number): string[] {
  const first = run.samples[0]!;
  const last = run.samples.at(-1)!;
  const anon = secondHalfSlope(run, anonOf);
  const heap = secondHalfSlope(run, (s) => s.heapUsed);
  const external = secondHalfSlope(run, (s) => s.external);
  const stored = run.objects + run.misses;
  const secondHalf = run.samples.filter((s) => s.t >= run.seconds / 2);
  const lowest = (y: (s: Sample) => number) => Math.min(...secondHalf.map(y).filter(Number.isFinite));
  const perProcess = last.processes.map((p) => `${fixed((p.anon + p.shmem) / MiB, 0)}`).join(' + ');
  return [
    `### ${run.tree}: ${run.objects} objects, ${run.workers === 1 ? '1 process' : `workers: ${run.workers}`}: ${run.seconds} s, ${run.requests} requests (${fixed(run.requests / run.seconds, 0)}/s, p50 ${fixed(run.p50Ms, 2)} ms, p99 ${fixed(run.p99Ms, 2)} ms), ${run.misses} misses; CPU ${fixed(run.cpuUsPerRequest, 0)} µs a request`,
    `RssAnon+RssShmem: ${fixed(anonOf(first) / MiB, 0)} MiB at the first 200, ${fixed(anonOf(last) / MiB, 0)} MiB at the end (${perProcess}, primary first), ${fixed(anonOf(last) / stored, 0)} B per stored object; RssFile ${fixed(fileOf(first) / MiB, 0)} → ${fixed(fileOf(last) / MiB, 0)} MiB`,
    `V8 heap used/total ${fixed(last.heapUsed / MiB, 0)}/${fixed(last.heapTotal / MiB, 0)} MiB, external ${fixed(last.external / MiB, 0)} MiB (all processes); anonymous beyond V8's heap total and external: ${fixed((anonOf(last) - last.heapTotal - last.external) / MiB, 0)} MiB; lowest in the second half: heap used ${fixed(lowest((s) => s.heapUsed) / MiB, 0)}, external ${fixed(lowest((s) => s.external) / MiB, 0)} MiB`,
    `slope over the second half: anon+shmem ${fixed(anon.slope, 2)} ± ${fixed(anon.stderr, 2)} MiB/min, heap used ${fixed(heap.slope, 2)} ± ${fixed(heap.stderr, 2)}, external ${fixed(external.slope, 2)} ± ${fixed(external.stderr, 2)}`,
    `verdict: ${anon.slope < flatBelow ? 'flat' : 'GROWING'} (flat = anon+shmem slope under ${flatBelow} MiB/min); load average ${fixed(first.load, 2)} → ${fixed(last.load, 2)}`,
  ];
}

/** `--edge-env A=1,B=` as an environment over this one's (an empty value removes the variable). */
function edgeEnv(spec: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, MALLOC_ARENA_MAX: '2' };
  for (const pair of spec.split(',').filter(Boolean)) {
    const [name, value] = pair.split('=') as [string, string | undefined];
    if (value === undefined || value === '') delete env[name];
    else env[name] = value;
  }
  return env;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      objects: { type: 'string', default: '10000,100000' },
      workers: { type: 'string', default: '2,1' },
      seconds: { type: 'string', default: '180' },
      'miss-share': { type: 'string', default: '0' },
      'in-flight': { type: 'string', default: '16' },
      size: { type: 'string', default: '2048' },
      sample: { type: 'string', default: '5' },
      'flat-below': { type: 'string', default: '2' },
      'edge-node-args': { type: 'string', default: '' },
      'edge-env': { type: 'string', default: '' },
      tmp: { type: 'string', default: os.tmpdir() },
      base: { type: 'string' },
      rounds: { type: 'string', default: '1' },
    },
  });
  const env = edgeEnv(values['edge-env']);
  const nodeArgs = values['edge-node-args'].split(' ').filter(Boolean);
  console.log(`date ${new Date().toISOString()}; ${os.availableParallelism()} CPUs; node ${process.version}; edge MALLOC_ARENA_MAX=${env['MALLOC_ARENA_MAX'] ?? 'unset'}; node args [${nodeArgs.join(' ')}]; load average ${loadAverage()}`);
  console.log(`command: node dist/test/bench/disk-soak.js ${process.argv.slice(2).join(' ')}`);
  const tmp = await mkdtemp(join(values.tmp, 'anycdn-bench-soak-'));
  const origin = spawn(process.execPath, [join(REPO_ROOT, 'dist/test/bench/counting-origin.js')], { stdio: ['ignore', 'pipe', 'inherit'] });
  const originExited = new Promise((r) => origin.once('exit', r));
  const runs: SoakRun[] = [];
  try {
    const { url: originUrl } = JSON.parse(await new Promise<string>((resolve) => origin.stdout!.once('data', (d: Buffer) => resolve(d.toString())))) as { url: string };
    const trees = values.base === undefined ? [{ tree: 'this', root: REPO_ROOT }] : [{ tree: 'this', root: REPO_ROOT }, { tree: 'base', root: values.base }];
    for (let round = 1; round <= Number(values.rounds); round++) {
      for (const objects of values.objects.split(',').map(Number)) {
        for (const workers of values.workers.split(',').map(Number)) {
          for (const { tree, root } of trees) {
            console.log(`\nround ${round}, ${tree}: ${objects} objects, workers ${workers}:`);
            const run = await soak({ tmp, originUrl, objects, workers, seconds: Number(values.seconds), size: Number(values.size), inFlight: Number(values['in-flight']), missShare: Number(values['miss-share']), sampleMs: Number(values.sample) * 1000, nodeArgs, env, tree, root });
            runs.push(run);
            for (const line of summary(run, Number(values['flat-below']))) console.log(line);
          }
        }
      }
    }
    console.log('\n## Summary');
    for (const run of runs) for (const line of summary(run, Number(values['flat-below']))) console.log(line);
  } finally {
    origin.kill('SIGTERM');
    await originExited;
    await rm(tmp, { recursive: true, force: true });
  }
}

await main();
