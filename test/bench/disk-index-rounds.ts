/**
 * Index rounds (test/bench/disk.ts, section 3b with `--index-rounds R`): the hit and miss latency
 * of the edge over a small and a large cache, in rounds that alternate the two, so that what other
 * work on the machine does falls on both sizes alike, and with few requests in flight, so that
 * the p99 is the cache's and not a queue's.
 *
 * Both caches are built once (disk-build.ts). For hits, with `workers: 2` and then as one process,
 * an edge is started fresh on each cache (both running at once, each with its own access log),
 * its objects read back and `hitWarmupMs` of hits at 16 in flight sent to it; then the two edges
 * are reused for `rounds` rounds, each measuring every in-flight count on both (the order of the
 * sizes swapped every round). Misses come after all the hits (each adds an entry to a cache), on
 * edges started fresh again, after a second of misses. Every measurement gives:
 * - the client's p50 and p99 (from send to the last byte received: includes the client's own
 *   event loop and the time a request waits in the edge's queue when others are in flight);
 * - the edge's p50 and p99 from its access log's `durationMs`: from the request's head read by
 *   the process to the answer handed to the socket (a fast hit's: to the answer built, written
 *   right after), so the lookup, the read and the rest of the edge's own work, without the time
 *   the request waited before it was read;
 * - CPU time and minor page faults of every edge process per request, and the cores other
 *   processes of the machine used meanwhile.
 * The ratios large / small are given twice: of the medians over the rounds, and the median of
 * the ratios within a round (sizes measured back to back, so less moved by a change of load).
 * The entries the misses added are reported.
 */
import { execFileSync } from 'node:child_process';
import { open, stat } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { closedLoop, fixed, httpGetter, median, percentile } from './bench-lib.js';
import { hitPicker, launchEdge, verifyStored, type CountingOrigin, type EdgeStart } from './disk-edge.js';
import { cpuMeter, processTree, type ServerProcess } from './edge-peers.js';

export interface IndexRoundsOptions {
  origin: CountingOrigin;
  env: NodeJS.ProcessEnv;
  started: ServerProcess[];
  /** The caches, built: the small one first. */
  caches: readonly { n: number; dir: string; cacheDir: string; host: string }[];
  /** Body bytes of every object. */
  size: number;
  verify: number;
  edge: Pick<EdgeStart, 'memoryMaxEntrySize' | 'nodeArgs' | 'hitsOver' | 'hitWarmupMs'>;
  rounds: number;
  /** Requests kept in flight, each count measured in every round (`--index-inflight`, default 1,4,16). */
  inFlight: readonly number[];
  /** Measured time of one hit window (`--index-hit-seconds`) and of one miss window (`--index-miss-seconds`; 0: no misses), ms. */
  hitMs: number;
  missMs: number;
  /** Fraction of requests the edge logs (`--index-log-sample`, default 1): the server-side times come from these. */
  logSample: number;
  /** CPU the benchmark's own process (the client) is pinned to while it measures (`--index-pin-client`); the edges are not. */
  pinClient?: number;
}

type Kind = 'hit' | 'miss';
const kinds: Record<Kind, string> = { hit: 'hits', miss: 'misses' };

/** One measured window on one edge. */
interface Window {
  round: number;
  ops: number;
  opsPerSec: number;
  clientP50: number;
  clientP99: number;
  /** From the access log: requests of the window it logged, and their p50 and p99 of `durationMs`. */
  logged: number;
  serverP50: number;
  serverP99: number;
  cpuUs: number;
  faults: number;
  /** Cores used by processes outside this benchmark during the window. */
  others: number;
}

/** An edge measured in the rounds, with its access log read so far. */
interface RunningEdge {
  n: number;
  workers: number;
  edge: ServerProcess;
  pid: number;
  getter: ReturnType<typeof httpGetter>;
  pick: () => string;
  log: string;
  logRead: number;
  missId: number;
}

const WINDOW_WARMUP_MS = 500;
/** Longer than the access log's flush interval (20 ms, disk-edge.ts) with room for a busy machine. */
const LOG_SETTLE_MS = 250;

/** Lines of the access log written since the last call. */
async function newLogLines(e: RunningEdge): Promise<string[]> {
  const size = (await stat(e.log)).size;
  if (size <= e.logRead) return [];
  const fd = await open(e.log, 'r');
  try {
    const buf = Buffer.alloc(size - e.logRead);
    const { bytesRead } = await fd.read(buf, 0, buf.length, e.logRead);
    const text = buf.toString('latin1', 0, bytesRead);
    const complete = text.lastIndexOf('\n') + 1;
    e.logRead += complete;
    return text.slice(0, complete).split('\n').filter(Boolean);
  } finally {
    await fd.close();
  }
}

/** `durationMs` of the logged requests of `kind` that arrived in [from, to) (wall clock, ms), ascending. */
function serverTimes(lines: readonly string[], kind: Kind, from: number, to: number): number[] {
  const prefix = kind === 'hit' ? '/s/' : '/m/';
  const times: number[] = [];
  for (const line of lines) {
    const r = JSON.parse(line) as { time: string; target: string; outcome: string; durationMs: number };
    const t = Date.parse(r.time);
    if (t >= from && t < to && r.target.startsWith(prefix) && r.outcome === kind) times.push(r.durationMs);
  }
  return times.sort((a, b) => a - b);
}

/** One window of `kind` requests on `e` with `inFlight` at once: client and server latencies, CPU and faults. */
async function measureWindow(e: RunningEdge, kind: Kind, inFlight: number, durationMs: number, round: number, size: number): Promise<Window> {
  const op = kind === 'hit' ? () => e.pick() : () => `/m/${e.n}-${e.workers}/${e.missId++}-${size}.bin`;
  const tree = () => processTree(e.pid).reduce((sum, p) => ({ ticks: sum.ticks + p.ticks, faults: sum.faults + p.minorFaults }), { ticks: 0, faults: 0 });
  const from = Date.now() + WINDOW_WARMUP_MS;
  const atWindow = new Promise<{ ticks: number; faults: number; meter: ReturnType<typeof cpuMeter> }>((resolve) => setTimeout(() => resolve({ ...tree(), meter: cpuMeter({ edge: [e.pid] }) }), WINDOW_WARMUP_MS));
  const load = await closedLoop({ inFlight, durationMs, warmupMs: WINDOW_WARMUP_MS, op: async () => (await e.getter.get(op())).length });
  const before = await atWindow;
  const after = tree();
  const others = before.meter.stop()['others']!;
  await new Promise((r) => setTimeout(r, LOG_SETTLE_MS));
  const server = serverTimes(await newLogLines(e), kind, from, from + durationMs);
  return {
    round,
    ops: load.ops,
    opsPerSec: load.opsPerSec,
    clientP50: load.p50Ms,
    clientP99: load.p99Ms,
    logged: server.length,
    serverP50: percentile(server, 50),
    serverP99: percentile(server, 99),
    cpuUs: ((after.ticks - before.ticks) * 10_000) / load.ops,
    faults: (after.faults - before.faults) / load.ops,
    others,
  };
}

/** Pins this process (every thread) to `cpu`, or back to every CPU; processes started later inherit it. */
function pinSelf(cpu: number | undefined): void {
  const cpus = cpu === undefined ? `0-${os.availableParallelism() - 1}` : String(cpu);
  execFileSync('taskset', ['-a', '-pc', cpus, String(process.pid)], { stdio: 'ignore' });
}

const edgeName = (workers: number) => (workers === 1 ? '1 process' : `workers: ${workers}`);
const loadNow = () => os.loadavg()[0]!.toFixed(1);

/** An edge with `workers` on every cache, fresh, each with its own access log (started even if the call fails: stop `edges`). */
async function startEdges(o: IndexRoundsOptions, kind: Kind, workers: number, edges: RunningEdge[]): Promise<void> {
  for (const c of o.caches) {
    const log = join(c.dir, `access-${kind}-${workers}.log`);
    const start: EdgeStart = { ...c, ...o.edge, size: o.size, workers, origin: o.origin, maxBytes: '40GiB', accessLog: { path: log, sample: o.logSample } };
    const { edge, pid } = await launchEdge(start, o.env, o.started);
    edges.push({ n: c.n, workers, edge, pid, getter: httpGetter(edge.url, Math.max(16, ...o.inFlight)), pick: hitPicker(start), log, logRead: 0, missId: 0 });
  }
}

/**
 * Hits (objects read back, then the warm-up) or misses (a second of them first: a fresh process
 * runs unoptimised code) on fresh edges with `workers`, then the rounds; the edges are stopped.
 * Hits of both edge kinds are measured before any miss adds entries to the caches.
 */
async function kindRounds(o: IndexRoundsOptions, kind: Kind, workers: number, record: (e: RunningEdge, k: number, w: Window) => void): Promise<string> {
  const load0 = loadNow();
  const edges: RunningEdge[] = [];
  try {
    await startEdges(o, kind, workers, edges);
    const missOp = (e: RunningEdge) => async () => (await e.getter.get(`/m/${e.n}-${workers}/${e.missId++}-${o.size}.bin`)).length;
    for (const e of edges) {
      if (kind === 'hit') {
        await verifyStored(e.getter, o.origin, o.verify, e.pick, `index ${e.n}`);
        // Every process reads the objects hit (and maps their index pages) before any round.
        await closedLoop({ inFlight: 16, durationMs: o.edge.hitWarmupMs ?? 1000, warmupMs: 0, op: async () => (await e.getter.get(e.pick())).length });
      } else await closedLoop({ inFlight: 16, durationMs: 1000, warmupMs: 0, op: missOp(e) });
      await newLogLines(e); // the warm-up's lines
    }
    if (o.pinClient !== undefined) pinSelf(o.pinClient);
    const servedBefore = await o.origin.served();
    const missesBefore = edges.reduce((sum, e) => sum + e.missId, 0);
    for (let round = 0; round < o.rounds; round++) {
      const order = round % 2 === 0 ? edges : [...edges].reverse();
      for (const k of o.inFlight) {
        for (const e of order) {
          const w = await measureWindow(e, kind, k, kind === 'hit' ? o.hitMs : o.missMs, round, o.size);
          record(e, k, w);
          console.log(`  index rounds ${edgeName(workers)}, ${e.n} objects, ${kinds[kind]}, ${k} in flight, round ${round + 1}: client p99 ${fixed(w.clientP99, 3)} ms, edge p99 ${fixed(w.serverP99, 3)} ms (${w.logged} logged of ${w.ops}), ${fixed(w.opsPerSec, 0)}/s, CPU ${fixed(w.cpuUs, 0)} µs, faults ${fixed(w.faults, 2)}, others ${fixed(w.others, 2)} cores, load ${loadNow()}`);
        }
      }
    }
    // Hits must not reach the origin; every miss must.
    const misses = edges.reduce((sum, e) => sum + e.missId, 0) - missesBefore;
    const fetched = (await o.origin.served()) - servedBefore;
    if (kind === 'hit' && fetched !== 0) throw new Error(`index rounds: ${fetched} hits reached the origin`);
    if (fetched < misses) throw new Error(`index rounds: ${misses} misses sent but the origin served ${fetched}`);
    const added = kind === 'miss' ? `; entries added: ${edges.map((e) => `${e.missId} to the ${e.n}`).join(', ')}` : '';
    return `${kinds[kind]} of ${edgeName(workers)} ${load0}–${loadNow()}${added}`;
  } finally {
    if (o.pinClient !== undefined) pinSelf(undefined);
    for (const e of edges) {
      await e.getter.close();
      await e.edge.stop();
    }
  }
}

/** `--index-inflight`: counts of requests in flight, e.g. `1,4,16`. */
export function parseInFlight(text: string): number[] {
  const counts = text.split(',').map(Number);
  if (counts.some((k) => !(Number.isInteger(k) && k > 0))) throw new Error(`--index-inflight: positive whole numbers, e.g. 1,4,16, not ${JSON.stringify(text)}`);
  return counts;
}

/** Runs the rounds on every cache: hits with `workers: 2`, then with one process, then misses alike; returns the report's lines. */
export async function indexRounds(o: IndexRoundsOptions): Promise<string[]> {
  const results = new Map<string, Window[]>();
  const keyOf = (workers: number, kind: Kind, k: number, n: number) => `${workers} ${kind} ${k} ${n}`;
  const loads: string[] = [];
  const measured: Kind[] = o.missMs > 0 ? ['hit', 'miss'] : ['hit'];
  for (const kind of measured) {
    for (const workers of [2, 1]) {
      const record = (e: RunningEdge, k: number, w: Window) => results.set(keyOf(workers, kind, k, e.n), [...(results.get(keyOf(workers, kind, k, e.n)) ?? []), w]);
      loads.push(await kindRounds(o, kind, workers, record));
    }
  }
  return report(o, results, keyOf, loads);
}

const ms = (v: number) => fixed(v, 3);
const spread = (values: number[]) => `${ms(median(values))} (${ms(Math.min(...values))}–${ms(Math.max(...values))})`;

function report(o: IndexRoundsOptions, results: Map<string, Window[]>, keyOf: (workers: number, kind: Kind, k: number, n: number) => string, loads: string[]): string[] {
  const lines: string[] = [];
  const say = (line: string) => lines.push(line);
  const [small, large] = [o.caches[0]!.n, o.caches.at(-1)!.n];
  const over = o.edge.hitsOver === undefined ? '' : `, hits over ${o.edge.hitsOver} objects spread over each cache`;
  const memory = o.edge.memoryMaxEntrySize === undefined ? '' : `, \`memory.maxEntrySize: ${o.edge.memoryMaxEntrySize}\``;
  const pin = o.pinClient === undefined ? '' : `; the client pinned to CPU ${o.pinClient} (the edges not)`;
  say('');
  say(`#### Index rounds: ${o.caches.map((c) => c.n).join(' and ')} objects of ${o.size} bytes${memory}${over}; per edge ${fixed((o.edge.hitWarmupMs ?? 1000) / 1000, 0)} s of hits at 16 in flight first, then ${o.rounds} rounds of ${fixed(o.hitMs / 1000, 0)} s of hits at ${o.inFlight.join(', ')} in flight on each size in turn, ${o.missMs > 0 ? `then on fresh edges (1 s of misses first) ${o.rounds} rounds of ${fixed(o.missMs / 1000, 0)} s of misses` : 'no misses'}; the two edges of a kind (\`workers: 2\`, 1 process) started once${o.missMs > 0 ? ' for the hits and once for the misses' : ''} and reused across rounds; edge times from its access log (${o.logSample === 1 ? 'every request' : `${o.logSample} of the requests`})${pin}`);
  say('');
  say('p99 and p50 in ms: median over the rounds (min–max); "each round" lists the p99 of every round.');
  say('');
  say('| edge | kind | in flight | objects | requests a round | client p99 | each round | edge p99 | each round | client p50 | edge p50 | req/s | CPU a request | faults a request | others (cores) |');
  say('| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  const ratios: string[] = [];
  for (const workers of [2, 1]) {
    for (const kind of ['hit', 'miss'] as const) {
      for (const k of o.inFlight) {
        for (const n of [small, large]) {
          const ws = results.get(keyOf(workers, kind, k, n)) ?? [];
          if (ws.length === 0) continue;
          const of = (f: (w: Window) => number) => ws.map(f);
          say(`| ${edgeName(workers)} | ${kinds[kind]} | ${k} | ${n} | ${fixed(median(of((w) => w.ops)), 0)} | ${spread(of((w) => w.clientP99))} | ${of((w) => w.clientP99).map(ms).join(', ')} | ${spread(of((w) => w.serverP99))} | ${of((w) => w.serverP99).map(ms).join(', ')} | ${ms(median(of((w) => w.clientP50)))} | ${ms(median(of((w) => w.serverP50)))} | ${fixed(median(of((w) => w.opsPerSec)), 0)} | ${fixed(median(of((w) => w.cpuUs)), 0)} µs | ${fixed(median(of((w) => w.faults)), 2)} | ${fixed(median(of((w) => w.others)), 2)} |`);
        }
        const a = results.get(keyOf(workers, kind, k, small)) ?? [];
        const b = results.get(keyOf(workers, kind, k, large)) ?? [];
        if (a.length === 0 || a.length !== b.length) continue;
        const ratio = (f: (w: Window) => number) => {
          const paired = a.map((w, i) => f(b[i]!) / f(w));
          return `${fixed(median(b.map(f)) / median(a.map(f)), 2)} (in a round: ${fixed(median(paired), 2)}, ${fixed(Math.min(...paired), 2)}–${fixed(Math.max(...paired), 2)})`;
        };
        ratios.push(`- ${edgeName(workers)}, ${kinds[kind]}, ${k} in flight, ${large} / ${small} objects: client p99 ${ratio((w) => w.clientP99)}; edge p99 ${ratio((w) => w.serverP99)}; edge p50 ${ratio((w) => w.serverP50)}; CPU a request ${ratio((w) => w.cpuUs)}`);
      }
    }
  }
  say('');
  say(`Ratios, large / small: of the medians over the rounds (in a round: median and range of the ratios of the two sizes measured back to back). Target: p99 within 1.2.`);
  say('');
  for (const line of ratios) say(line);
  say('');
  say(`Load average (1 min) over the rounds of each: ${loads.join('; ')}`);
  return lines;
}
