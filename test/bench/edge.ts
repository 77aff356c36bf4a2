/**
 * Edge benchmark: cache hits and a cold-start herd through the anycdn edge, against the peers
 * measured in the same run (STYLE.md) — a bare `node:http` server answering from memory (the
 * reference), nginx `proxy_cache` and Varnish, all in front of the same anycdn origin.
 *
 *   npm run bench:edge -- [--seconds 10] [--reps 1] [--herd 500] [--skip hits,pinned,herd,access-log,tls]
 *                         [--sizes 1k,50k,1m] [--profile auto|always|never] [--profile-out FILE.cpuprofile]
 *                         [--wait 20]
 *
 * 1. An origin (child, `node dist/src/cli/anycdn.cjs origin`, MALLOC_ARENA_MAX=2) gets objects of
 *    1 KiB, 50 KiB, 1 MiB (and 5 MiB) of random bytes with `Cache-Control: public, max-age=3600`.
 * 2. The edge (child through the CLI, MALLOC_ARENA_MAX=2, default cache settings, access log
 *    off), the same edge writing its access log to a file (the default JSON lines, as operators
 *    run it; 1 KiB only, with one process and with a worker per core: what access logging
 *    costs), nginx and Varnish (test/bench/edge-peers.ts) and the reference
 *    (test/bench/hit-reference.ts) start on their own loopback ports, each warmed until it
 *    answers every object as a hit.
 * 3. Hits: `wrk -t2 -c64 -dN --latency` per object size and system, interleaved (reference,
 *    anycdn, nginx, Varnish, again) for `--reps` rounds; the origin's counter must not move.
 *    `--skip hits` leaves out these servers and runs (and the herd, which uses them): with
 *    `--skip hits,pinned` only the TLS section runs.
 *    Every request carries a browser's User-Agent and Referer (what an access line records).
 *    Then the pinned variant of the baselines, 1 KiB: a fresh set of servers started under
 *    `taskset -c 0`, `wrk -t1` under `taskset -c 1`.
 * 4. Herd: `--herd` concurrent GETs (one connection each) for a 5 MiB object no system has seen
 *    (a fresh path and fresh bytes per system and round); the origin's own counter says how many
 *    requests reached it; every body's length and a sample's SHA-256 are checked.
 * 5. TLS and HTTP/2 (test/bench/edge-tls.ts, `--skip tls` to leave out): 1 KiB hits over TLS 1.3
 *    with one certificate, two processes each: the edge (`workers: 2`, and with its quick front
 *    off on TLS), nginx `ssl http2`, bare Node https and http2, Varnish behind hitch; wrk for
 *    HTTP/1.1, h2load for HTTP/2, `openssl s_time` for new TLS connections per second.
 * 6. When anycdn misses a target (or `--profile always`), one more edge runs under `--cpu-prof`
 *    for a 1 KiB wrk run and the top functions by self time are printed.
 *
 * Before every measurement the script waits (up to `--wait` minutes) while another CPU benchmark
 * (test/bench/transform.js, memory-soak.js) runs, and records the load average and the CPU that
 * processes other than the server and wrk used. Every process is stopped by PID at the end.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmod, copyFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Pool } from 'undici';
import { fixed, median, percentile, REPO_ROOT } from './bench-lib.js';
import { tlsBench } from './edge-tls.js';
import { cpuMeter, hasCommand, peerVersions, startEdge, startNginx, startOrigin, startReference, startVarnish, tails, waitForIdleCpu, type OriginProcess, type ServerProcess } from './edge-peers.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const HIT_SIZES = [
  { key: '1k', name: '1 KiB', file: 'obj-1k.bin', bytes: KiB },
  { key: '50k', name: '50 KiB', file: 'obj-50k.bin', bytes: 50 * KiB },
  { key: '1m', name: '1 MiB', file: 'obj-1m.bin', bytes: MiB },
] as const;
const HERD_BYTES = 5 * MiB;
const HERD_REFERENCE_FILE = 'obj-5m.bin';
const CACHE_CONTROL = 'public, max-age=3600';
const TARGETS = { reference: 0.85, varnish: 1.0, accessLog: 0.9 };
/** What a browser sends besides Host: an access line records both, so they are part of what it costs. */
const BROWSER_FIELDS = ['User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36', 'Referer: https://www.example.com/gallery/summer.html'];

type SystemName = 'reference' | 'referenceEdgeHeaders' | 'referenceWorkers' | 'anycdn' | 'anycdnWorkers' | 'anycdnLog' | 'anycdnWorkersLog' | 'nginx' | 'varnish';
/** Worker processes of the multi-process anycdn edge and reference: one per core. */
const WORKERS = os.availableParallelism();
const LABEL: Record<SystemName, string> = {
  reference: 'node:http reference, 1 process',
  referenceEdgeHeaders: 'node:http reference, 1 process, an anycdn hit\'s header fields',
  referenceWorkers: `node:http reference, ${WORKERS} processes`,
  anycdn: 'anycdn edge, 1 process',
  anycdnWorkers: `anycdn edge, workers: ${WORKERS}`,
  anycdnLog: 'anycdn edge, 1 process, access log to a file',
  anycdnWorkersLog: `anycdn edge, workers: ${WORKERS}, access log to a file`,
  nginx: 'nginx proxy_cache',
  varnish: 'Varnish',
};
type Systems = Partial<Record<SystemName, ServerProcess>>;

// ---------------------------------------------------------------- a quiet machine

/** Remarks for the report, each once. */
const notes = new Set<string>();
/**
 * Longest wait for another benchmark before one measurement (`--wait MINUTES`, default 20). With
 * `--wait 0` nothing is waited for: no quiet machine, no repeated run (a quick A/B on a shared
 * machine, its numbers marked as such).
 */
let maxWaitMs = 20 * 60_000;

/** Waits (≤ maxWaitMs, polling every 30 s) while another CPU benchmark runs; returns the 1-min load then. */
async function waitForQuiet(): Promise<number> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const running = await new Promise<string>((resolve) => execFile('pgrep', ['-f', 'bench/(transform|memory-soak)'], (_err, stdout) => resolve(stdout.trim())));
    if (running === '') return os.loadavg()[0]!;
    if (Date.now() >= deadline) {
      notes.add(`another CPU benchmark (pids ${running.split('\n').join(', ')}) was running during a measurement (waited ${maxWaitMs / 60_000} min); measured anyway`);
      return os.loadavg()[0]!;
    }
    console.log(`  waiting: another benchmark runs (pid ${running.split('\n').join(', ')}); load ${os.loadavg()[0]!.toFixed(2)}`);
    await new Promise((r) => setTimeout(r, 30_000));
  }
}

// ---------------------------------------------------------------- wrk

export interface WrkResult {
  rps: number;
  p50Ms: number;
  p99Ms: number;
  requests: number;
  /** Responses that were not 2xx/3xx, and socket errors (connect, read, write, timeout). */
  non2xx: number;
  socketErrors: number;
}

const UNIT_MS: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000 };

/** Parses `wrk --latency` output. */
export function parseWrk(text: string): WrkResult {
  const latency = (p: number): number => {
    const m = new RegExp(`^\\s+${p}%\\s+([\\d.]+)(us|ms|s|m)\\s*$`, 'm').exec(text);
    return m === null ? NaN : Number(m[1]) * UNIT_MS[m[2]!]!;
  };
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(text);
  if (rps === null) throw new Error(`cannot parse wrk output:\n${text}`);
  return {
    rps: Number(rps[1]),
    p50Ms: latency(50),
    p99Ms: latency(99),
    requests: Number(/(\d+) requests in/.exec(text)?.[1] ?? NaN),
    non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0),
    socketErrors: socket === null ? 0 : socket.slice(1).reduce((s, v) => s + Number(v), 0),
  };
}

interface Run extends WrkResult {
  /** Cores used during the run by the server (its whole process tree), by wrk and by everything else. */
  serverCores: number;
  wrkCores: number;
  otherCores: number;
  /** 1-minute load average just before the run. */
  load: number;
  /** CLOCK_MONOTONIC in µs (the clock of V8's .cpuprofile) when wrk started and ended. */
  startUs: number;
  endUs: number;
}

const monotonicUs = (): number => Number(process.hrtime.bigint() / 1000n);

/** Processes outside the benchmark using more cores than this during a run make it be repeated. */
const BUSY_OTHERS = 0.3;

/**
 * One wrk run, after waiting for other benchmarks to end and for the machine to be idle; repeated
 * (at most twice) when other processes used more than BUSY_OTHERS cores during it.
 */
async function runWrk(url: string, server: ServerProcess, o: { seconds: number; threads: number; connections: number; wrkCpu?: number }): Promise<Run> {
  let run: Run | undefined;
  if (maxWaitMs === 0) {
    notes.add('--wait 0: runs were measured at once, without waiting for a quiet machine nor repeating busy runs (see the "other cores" column)');
    return { ...(await wrkOnce(url, server, o)), load: os.loadavg()[0]! };
  }
  for (let attempt = 1; attempt <= 3; attempt++) {
    const load = await waitForQuiet();
    if (!(await waitForIdleCpu(60_000))) notes.add('some runs started while other processes kept the CPU busy for 60 s (see the "other cores" column)');
    run = { ...(await wrkOnce(url, server, o)), load };
    if (run.otherCores <= BUSY_OTHERS) break;
    console.log(`  ${url}: other processes used ${fixed(run.otherCores, 2)} cores during the run (${fixed(run.rps, 0)} req/s)${attempt < 3 ? '; repeating it' : '; kept'}`);
    notes.add(`runs during which other processes used more than ${BUSY_OTHERS} cores were repeated (at most twice); the last attempt is kept`);
  }
  return run!;
}

async function wrkOnce(url: string, server: ServerProcess, o: { seconds: number; threads: number; connections: number; wrkCpu?: number }): Promise<Omit<Run, 'load'>> {
  const args = [`-t${o.threads}`, `-c${o.connections}`, `-d${o.seconds}s`, '--latency', ...BROWSER_FIELDS.flatMap((field) => ['-H', field]), url];
  const startUs = monotonicUs();
  const child = o.wrkCpu === undefined ? spawn('wrk', args) : spawn('taskset', ['-c', String(o.wrkCpu), 'wrk', ...args]);
  const meter = cpuMeter({ server: [server.pid], wrk: [child.pid!] });
  // Read the CPU counters while wrk still exists (/proc forgets an exited process's time).
  let cores: Record<string, number> | undefined;
  const reading = setTimeout(() => (cores = meter.stop()), Math.max(500, o.seconds * 1000 - 300));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), (o.seconds + 30) * 1000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  const endUs = monotonicUs();
  clearTimeout(killer);
  clearTimeout(reading);
  cores ??= meter.stop();
  if (code !== 0) throw new Error(`wrk ${args.join(' ')} exited ${code}:\n${out}`);
  return { ...parseWrk(out), serverCores: cores['server']!, wrkCores: cores['wrk']!, otherCores: cores['others']!, startUs, endUs };
}

// ---------------------------------------------------------------- systems

async function get(base: string, path: string): Promise<{ status: number; headers: Record<string, string>; body: Buffer }> {
  const pool = new Pool(base, { connections: 1 });
  try {
    const res = await pool.request({ path, method: 'GET', headersTimeout: 30_000, bodyTimeout: 30_000 });
    return { status: res.statusCode, headers: res.headers as Record<string, string>, body: Buffer.from(await res.body.arrayBuffer()) };
  } finally {
    await pool.close();
  }
}

/** How each system says "this was a hit". */
function hitWord(system: SystemName, headers: Record<string, string>): string {
  switch (system) {
    case 'reference':
    case 'referenceEdgeHeaders':
    case 'referenceWorkers':
      return 'hit';
    case 'anycdn':
    case 'anycdnWorkers':
    case 'anycdnLog':
    case 'anycdnWorkersLog':
      return (headers['cache-status'] ?? '').startsWith('anycdn; hit') ? 'hit' : `miss (${headers['cache-status']})`;
    case 'nginx':
      return headers['x-cache'] === 'HIT' ? 'hit' : `miss (X-Cache ${headers['x-cache']})`;
    case 'varnish':
      // X-Varnish carries two transaction ids on a hit (this one and the one that fetched it).
      return (headers['x-varnish'] ?? '').trim().split(/\s+/).length === 2 ? 'hit' : `miss (X-Varnish ${headers['x-varnish']}, Age ${headers['age']})`;
  }
}

/** Requests each object until the system answers it as a hit with the right bytes. */
async function warm(system: SystemName, server: ServerProcess, objects: Map<string, Buffer>): Promise<void> {
  for (const [file, bytes] of objects) {
    let last = '';
    for (let attempt = 0; attempt < 20; attempt++) {
      const res = await get(server.url, `/bench/${file}`);
      if (res.status !== 200 || !res.body.equals(bytes)) throw new Error(`${system} /bench/${file}: status ${res.status}, ${res.body.length} bytes (expected 200, ${bytes.length} identical bytes)`);
      last = hitWord(system, res.headers);
      if (last === 'hit') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    if (last !== 'hit') throw new Error(`${system} /bench/${file}: still not a hit after 20 requests: ${last}`);
  }
}

async function startSet(dir: string, o: { origin: string; objectsDir: string; env: NodeJS.ProcessEnv; cpu?: number; loggingEdges: boolean; nginxWorkers: number }, started: ServerProcess[]): Promise<Systems> {
  // The edge loads dist/ now: say which code that was (the tree may change during a long run).
  console.log(`starting servers in ${dir}; anycdn ${gitState()}`);
  const keep = (name: SystemName, s: ServerProcess): [SystemName, ServerProcess] => (started.push(s), [name, s]);
  const entries: [SystemName, ServerProcess][] = [];
  entries.push(keep('reference', await startReference(join(dir, 'reference'), o.objectsDir, { env: o.env, cpu: o.cpu })));
  // The same response on the wire as an anycdn hit (13 header fields instead of 5): Node's cost per field is not small.
  entries.push(keep('referenceEdgeHeaders', await startReference(join(dir, 'reference-edge-headers'), o.objectsDir, { env: o.env, cpu: o.cpu, edgeHeaders: true })));
  entries.push(keep('anycdn', await startEdge(join(dir, 'edge'), { upstream: o.origin, env: o.env, accessLog: 'off', cpu: o.cpu })));
  // On all cores (not pinned), also as many processes as cores: how the edge is meant to run there.
  if (o.cpu === undefined && WORKERS > 1) {
    entries.push(keep('referenceWorkers', await startReference(join(dir, 'reference-workers'), o.objectsDir, { env: o.env, workers: WORKERS })));
    entries.push(keep('anycdnWorkers', await startEdge(join(dir, 'edge-workers'), { upstream: o.origin, env: o.env, accessLog: 'off', workers: WORKERS })));
  }
  if (o.loggingEdges) {
    entries.push(keep('anycdnLog', await startEdge(join(dir, 'edge-log'), { upstream: o.origin, env: o.env, accessLog: 'file', cpu: o.cpu })));
    if (o.cpu === undefined && WORKERS > 1) entries.push(keep('anycdnWorkersLog', await startEdge(join(dir, 'edge-workers-log'), { upstream: o.origin, env: o.env, accessLog: 'file', workers: WORKERS })));
  }
  if (hasCommand('nginx')) entries.push(keep('nginx', await startNginx(join(dir, 'nginx'), { origin: o.origin, cpu: o.cpu, workers: o.nginxWorkers })));
  if (hasCommand('varnishd')) entries.push(keep('varnish', await startVarnish(join(dir, 'varnish'), { origin: o.origin, cpu: o.cpu })));
  return Object.fromEntries(entries);
}

async function stopAll(servers: ServerProcess[]): Promise<void> {
  await Promise.all(servers.splice(0).map((s) => s.stop().catch((err: unknown) => console.error(`stopping ${s.label} (pid ${s.pid}): ${String(err)}`))));
}

// ---------------------------------------------------------------- herd

interface HerdResult {
  originRequests: number | undefined;
  ok: number;
  failures: string[];
  sampled: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** How the system described its answers (Cache-Status, X-Cache, X-Varnish id count). */
  answers: Record<string, number>;
}

function describeAnswer(system: SystemName, headers: Record<string, string>): string {
  switch (system) {
    case 'reference':
    case 'referenceEdgeHeaders':
    case 'referenceWorkers':
      return 'memory';
    case 'anycdn':
    case 'anycdnWorkers':
    case 'anycdnLog':
    case 'anycdnWorkersLog':
      return (headers['cache-status'] ?? '?').replace(/^anycdn; /, '').replace(/; ttl=\d+/, '');
    case 'nginx':
      return headers['x-cache'] ?? '?';
    case 'varnish':
      return (headers['x-varnish'] ?? '').trim().split(/\s+/).length === 2 ? 'hit' : 'miss/fetch';
  }
}

async function herd(system: SystemName, base: string, path: string, expected: Buffer, n: number, origin: OriginProcess): Promise<HerdResult> {
  const sha = createHash('sha256').update(expected).digest('hex');
  await waitForQuiet();
  if (maxWaitMs > 0) await waitForIdleCpu(60_000);
  const before = system === 'reference' ? undefined : await origin.originalGets();
  const pool = new Pool(base, { connections: n, pipelining: 1, headersTimeout: 120_000, bodyTimeout: 120_000 });
  const latencies: number[] = [];
  const failures: string[] = [];
  const answers: Record<string, number> = {};
  let sampled = 0;
  try {
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const t0 = performance.now();
        try {
          const res = await pool.request({ path, method: 'GET', signal: AbortSignal.timeout(180_000) });
          const hash = i % 25 === 0 ? createHash('sha256') : undefined;
          let length = 0;
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            length += chunk.length;
            hash?.update(chunk);
          }
          latencies.push(performance.now() - t0);
          const answer = describeAnswer(system, res.headers as Record<string, string>);
          answers[answer] = (answers[answer] ?? 0) + 1;
          if (res.statusCode !== 200) failures.push(`#${i}: status ${res.statusCode}`);
          else if (length !== expected.length) failures.push(`#${i}: ${length} bytes, expected ${expected.length}`);
          else if (hash !== undefined && (sampled++, hash.digest('hex') !== sha)) failures.push(`#${i}: SHA-256 differs`);
        } catch (err) {
          failures.push(`#${i}: ${err instanceof Error ? err.message : String(err)}`);
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const after = before === undefined ? undefined : await origin.originalGets();
  latencies.sort((a, b) => a - b);
  return {
    originRequests: before === undefined ? undefined : after! - before,
    ok: n - failures.length,
    failures,
    sampled,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    maxMs: latencies.at(-1) ?? NaN,
    answers,
  };
}

// ---------------------------------------------------------------- CPU profile

interface CpuProfile {
  nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

/**
 * Self time by function and by package/area from a .cpuprofile, as Markdown rows, counting only
 * samples taken between `fromUs` and `toUs` (CLOCK_MONOTONIC µs, V8's profile clock): the load
 * window, without start-up (module loading) and shutdown.
 */
export function summariseProfile(profile: CpuProfile, fromUs: number, toUs: number, top = 15): { functions: string[][]; areas: string[][]; totalMs: number } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const self = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    t += profile.timeDeltas[i] ?? 0;
    if (t >= fromUs && t <= toUs) self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i + 1] ?? 0));
  });
  const fns = new Map<string, number>();
  const areas = new Map<string, number>();
  let total = 0;
  let busy = 0;
  for (const [id, us] of self) {
    const frame = byId.get(id)!;
    const path = frame.url.replace(/^file:\/\//, '');
    const url = path.includes('/node_modules/') ? path.replace(/^.*?\/node_modules\//, 'node_modules/') : path.replace(/^.*?\/dist\//, 'dist/');
    const name = `${frame.functionName || '(anonymous)'}${url === '' ? '' : ` ${url}:${frame.lineNumber + 1}`}`;
    fns.set(name, (fns.get(name) ?? 0) + us);
    const area = url.startsWith('node_modules/') ? url.split('/').slice(0, url.startsWith('node_modules/@') ? 3 : 2).join('/') : url.startsWith('node:') ? 'node: ' + url.slice(5).split('/').slice(0, 2).join('/') : url.startsWith('dist/') ? url.split('/').slice(0, 3).join('/') : frame.functionName || '(native)';
    areas.set(area, (areas.get(area) ?? 0) + us);
    total += us;
    if (frame.functionName !== '(idle)') busy += us;
  }
  const rows = (m: Map<string, number>): string[][] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([k, us]) => [k, fixed(us / 1000, 0), fixed((100 * us) / total, 1), fixed((100 * us) / busy, 1)]);
  return { functions: rows(fns), areas: rows(areas), totalMs: total / 1000 };
}

async function profileHit(dir: string, o: { origin: string; env: NodeJS.ProcessEnv; seconds: number; objects: Map<string, Buffer>; out?: string }, started: ServerProcess[]): Promise<string[]> {
  const profDir = join(dir, 'profile');
  const code = gitState();
  await mkdir(profDir, { recursive: true });
  // As operators run it: the access log on, to a file.
  const edge = await startEdge(join(dir, 'edge-prof'), { upstream: o.origin, env: o.env, accessLog: 'file', nodeArgs: ['--cpu-prof', '--cpu-prof-dir', profDir] });
  started.push(edge);
  let run: Run;
  try {
    await warm('anycdn', edge, o.objects);
    run = await runWrk(`${edge.url}/bench/${HIT_SIZES[0].file}`, edge, { seconds: o.seconds, threads: 2, connections: 64 });
  } finally {
    started.splice(started.indexOf(edge), 1);
    await edge.stop();
  }
  const files = (await readdir(profDir)).filter((f) => f.endsWith('.cpuprofile'));
  if (files.length === 0) return ['(no .cpuprofile written: the edge did not exit normally)'];
  const path = join(profDir, files[0]!);
  if (o.out !== undefined) await copyFile(path, o.out);
  // The first second of the run (connections opening) is left out.
  const summary = summariseProfile(JSON.parse(await readFile(path, 'utf8')) as CpuProfile, run.startUs + 1_000_000, run.endUs);
  return [
    `Edge (${code}) under \`node --cpu-prof\`, 1 KiB hits, \`wrk -t2 -c64 -d${o.seconds}s\`: ${fixed(run.rps, 0)} req/s while profiled (server ${fixed(run.serverCores, 2)} cores); ${fixed(summary.totalMs / 1000, 1)} s of samples from the load window (its first second left out).` +
      (o.out === undefined ? '' : ` Profile kept at ${o.out}.`),
    '',
    'Top functions by self time (% of all samples, % of non-idle samples):',
    '',
    ...markdownTable(['function (file:line)', 'self ms', '% all', '% busy'], summary.functions),
    '',
    'Self time by package / area:',
    '',
    ...markdownTable(['area', 'self ms', '% all', '% busy'], summary.areas),
  ];
}

// ---------------------------------------------------------------- report

function markdownTable(header: string[], rows: string[][]): string[] {
  return [`| ${header.join(' | ')} |`, `| ${header.map((_, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)];
}

const k = (rps: number): string => (rps >= 10_000 ? `${fixed(rps / 1000, 1)}k` : fixed(rps, 0));

function spread(values: number[], format: (v: number) => string): string {
  return values.length < 2 ? '' : `${format(Math.min(...values))}–${format(Math.max(...values))}`;
}

/** Median ratio a/b with the range of the ratios paired within each round. */
function ratio(a: Run[] | undefined, b: Run[] | undefined): { value: number; text: string } {
  if (a === undefined || b === undefined || a.length === 0) return { value: NaN, text: '-' };
  const paired = a.map((r, i) => r.rps / b[i]!.rps);
  const value = median(a.map((r) => r.rps)) / median(b.map((r) => r.rps));
  return { value, text: paired.length > 1 ? `${fixed(value, 2)} (${fixed(Math.min(...paired), 2)}–${fixed(Math.max(...paired), 2)})` : fixed(value, 2) };
}

function hitTable(runs: Map<SystemName, Run[]>): string[] {
  const rows = [...runs].map(([system, rs]) => [
    LABEL[system],
    k(median(rs.map((r) => r.rps))),
    spread(rs.map((r) => r.rps), k),
    fixed(median(rs.map((r) => r.p50Ms)), 2),
    fixed(median(rs.map((r) => r.p99Ms)), 2),
    fixed(median(rs.map((r) => r.serverCores)), 2),
    fixed(median(rs.map((r) => (r.serverCores / r.rps) * 1e6)), 0),
    fixed(median(rs.map((r) => r.wrkCores)), 2),
    fixed(median(rs.map((r) => r.otherCores)), 2),
    String(rs.reduce((s, r) => s + r.non2xx + r.socketErrors, 0)),
  ]);
  return markdownTable(['system', 'req/s (median)', 'range', 'p50 ms', 'p99 ms', 'server cores', 'server CPU µs/req', 'wrk cores', 'other cores', 'errors'], rows);
}

// ---------------------------------------------------------------- main

/** The commit measured, and whether the working tree differed from it. */
function gitState(): string {
  try {
    const git = (...args: string[]): string => execFileSync('git', ['-C', REPO_ROOT, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'src', 'edge', 'origin').split('\n').filter(Boolean).length;
    return `commit ${git('rev-parse', '--short', 'HEAD')}${dirty > 0 ? ` + ${dirty} uncommitted change(s) under src/ edge/ origin/ (dist/ built from the working tree)` : ''}`;
  } catch {
    return 'not a git checkout';
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: 'string', default: '10' },
      reps: { type: 'string', default: '1' },
      herd: { type: 'string', default: '500' },
      skip: { type: 'string', default: '' },
      profile: { type: 'string', default: 'auto' },
      'profile-out': { type: 'string' },
      wait: { type: 'string', default: '20' },
      sizes: { type: 'string', default: '1k,50k,1m' },
      tmp: { type: 'string', default: os.tmpdir() },
    },
  });
  maxWaitMs = Number(values.wait) * 60_000;
  const seconds = Number(values.seconds);
  const reps = Number(values.reps);
  const herdSize = Number(values.herd);
  const skip = new Set(values.skip.split(',').filter(Boolean));
  const sizes = HIT_SIZES.filter((s) => values.sizes.split(',').includes(s.key));
  if (sizes.length === 0 || !(seconds > 0 && seconds <= 120 && Number.isInteger(reps) && reps >= 1 && reps <= 10 && herdSize >= 1 && herdSize <= 5000 && maxWaitMs >= 0 && maxWaitMs <= 60 * 60_000) || !['auto', 'always', 'never'].includes(values.profile)) {
    throw new Error('usage: edge.js [--seconds 1..120] [--reps 1..10] [--herd 1..5000] [--wait 0..60 minutes] [--skip hits,pinned,herd,access-log,tls] [--sizes 1k,50k,1m] [--profile auto|always|never] [--profile-out FILE]');
  }
  if (!hasCommand('wrk')) throw new Error('wrk is not installed (apt-get install -y wrk nginx varnish)');
  // A missing peer is left out of the comparison, and said so.
  for (const tool of ['nginx', 'varnishd']) if (!hasCommand(tool)) notes.add(`${tool} is not installed: left out (apt-get install -y nginx varnish)`);
  const pinned = !skip.has('pinned') && hasCommand('taskset') && os.availableParallelism() >= 2;

  const cpuModel = /^model name\s*:\s*(.*)$/m.exec(await readFile('/proc/cpuinfo', 'utf8').catch(() => ''))?.[1] ?? os.cpus()[0]?.model ?? '?';
  const header = [
    `date: ${new Date().toISOString()}`,
    `machine: ${os.availableParallelism()} x ${cpuModel}, ${fixed(os.totalmem() / 2 ** 30, 1)} GiB RAM, ${os.type()} ${os.release()}`,
    `node ${process.version}; ${peerVersions().join('; ')}`,
    `anycdn: ${gitState()}`,
    `load average at start: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`,
    `command: node dist/test/bench/edge.js ${process.argv.slice(2).join(' ')}`,
  ];
  for (const line of header) console.log(line);

  const tmp = await mkdtemp(join(values.tmp, 'anycdn-bench-edge-'));
  if (process.getuid?.() === 0) await chmod(tmp, 0o755); // nginx workers (nobody) and Varnish (vcache) must reach their folders
  const env = { ...process.env, MALLOC_ARENA_MAX: '2' };
  const started: ServerProcess[] = [];
  const report: string[] = [];
  // Interrupted (Ctrl-C, a timeout): stop every server by PID and remove the folder before exiting.
  const onSignal = (signal: NodeJS.Signals): void => {
    console.error(`${signal}: stopping ${started.length} server(s)`);
    void stopAll(started)
      .then(() => rm(tmp, { recursive: true, force: true }))
      .finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    // ------------------------------------------------ origin and objects
    const objectsDir = join(tmp, 'objects');
    await mkdir(objectsDir);
    const objects = new Map<string, Buffer>(HIT_SIZES.map((s) => [s.file, randomBytes(s.bytes)]));
    for (const [file, bytes] of objects) await writeFile(join(objectsDir, file), bytes);
    await writeFile(join(objectsDir, HERD_REFERENCE_FILE), randomBytes(HERD_BYTES));
    const origin = await startOrigin(join(tmp, 'origin'), env);
    started.push(origin);
    for (const [file, bytes] of objects) await origin.put(`bench/${file}`, bytes, { 'cache-control': CACHE_CONTROL });
    console.log(`origin pid ${origin.pid} ${origin.url}; objects: ${[...objects].map(([f, b]) => `${f} (${b.length} B)`).join(', ')}`);

    // ------------------------------------------------ hits, unpinned
    const systems = skip.has('hits') ? {} : await startSet(join(tmp, 'unpinned'), { origin: origin.url, objectsDir, env, loggingEdges: !skip.has('access-log'), nginxWorkers: os.availableParallelism() }, started);
    for (const [name, s] of Object.entries(systems)) {
      await warm(name as SystemName, s, objects);
      console.log(`${LABEL[name as SystemName]}: pid ${s.pid} ${s.url} (${s.label}), warmed`);
    }
    const hits = new Map<string, Map<SystemName, Run[]>>(sizes.map((s) => [s.name, new Map()]));
    const originBeforeHits = await origin.originalGets();
    for (let rep = 1; rep <= (skip.has('hits') ? 0 : reps); rep++) {
      for (const size of sizes) {
        const small = size.bytes === KiB;
        const order = (['reference', ...(small ? (['referenceEdgeHeaders'] as const) : []), 'anycdn', ...(small ? (['anycdnLog'] as const) : []), 'referenceWorkers', 'anycdnWorkers', ...(small ? (['anycdnWorkersLog'] as const) : []), 'nginx', 'varnish'] as SystemName[]).filter((name) => systems[name] !== undefined);
        for (const system of order) {
          const server = systems[system]!;
          const run = await runWrk(`${server.url}/bench/${size.file}`, server, { seconds, threads: 2, connections: 64 });
          const byCase = hits.get(size.name)!;
          byCase.set(system, [...(byCase.get(system) ?? []), run]);
          console.log(`rep ${rep} ${size.name.padEnd(6)} ${system.padEnd(10)} ${k(run.rps).padStart(7)} req/s  p50 ${fixed(run.p50Ms, 2)} ms  p99 ${fixed(run.p99Ms, 2)} ms  server ${fixed(run.serverCores, 2)} cores (${fixed((run.serverCores / run.rps) * 1e6, 0)} µs/req), wrk ${fixed(run.wrkCores, 2)}, others ${fixed(run.otherCores, 2)}; load ${fixed(run.load, 2)}${run.non2xx + run.socketErrors > 0 ? `  non-2xx ${run.non2xx}, socket errors ${run.socketErrors}` : ''}`);
        }
      }
    }
    // Every answer of a logging edge was logged (written, or dropped and counted): say how many.
    const logLines: string[] = [];
    for (const system of ['anycdnLog', 'anycdnWorkersLog'] as const) {
      const server = systems[system];
      if (server === undefined) continue;
      const text = (await get(server.url, '/_cdn/metrics')).body.toString();
      const sum = (name: string): number => text.split('\n').filter((l) => l.startsWith(name)).reduce((t, l) => t + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
      const requests = (hits.get('1 KiB')?.get(system) ?? []).reduce((t, r) => t + r.requests, 0);
      logLines.push(`${LABEL[system]}: ${sum('anycdn_edge_access_log_lines_total')} lines written, ${sum('anycdn_edge_access_log_dropped_total')} dropped, for ${requests} wrk requests (and the warm-up's)`);
    }
    const originDuringHits = (await origin.originalGets()) - originBeforeHits;
    if (originDuringHits !== 0) notes.add(`the origin served ${originDuringHits} GETs during the hit runs: not every request was a hit`);

    // ------------------------------------------------ herd
    const herds = new Map<SystemName, HerdResult[]>();
    if (!skip.has('herd') && !skip.has('hits')) {
      const herdSystems = (['reference', 'anycdn', 'anycdnWorkers', 'nginx', 'varnish'] as SystemName[]).filter((name) => systems[name] !== undefined);
      for (let rep = 1; rep <= reps; rep++) {
        for (const system of herdSystems) {
          let path = `/bench/${HERD_REFERENCE_FILE}`;
          let bytes = await readFile(join(objectsDir, HERD_REFERENCE_FILE));
          if (system !== 'reference') {
            bytes = randomBytes(HERD_BYTES);
            path = `/herd/${system}-${rep}-${bytes.subarray(0, 4).toString('hex')}.bin`;
            await origin.put(path.slice(1), bytes, { 'cache-control': CACHE_CONTROL });
          }
          const result = await herd(system, systems[system]!.url, path, bytes, herdSize, origin);
          herds.set(system, [...(herds.get(system) ?? []), result]);
          console.log(`herd rep ${rep} ${system.padEnd(10)} origin requests ${result.originRequests ?? 'n/a'}, ${result.ok}/${herdSize} ok (${result.sampled} SHA-256 checked), p50 ${fixed(result.p50Ms, 0)} ms, p99 ${fixed(result.p99Ms, 0)} ms, max ${fixed(result.maxMs, 0)} ms; ${JSON.stringify(result.answers)}${result.failures.length > 0 ? `; failures: ${result.failures.slice(0, 5).join('; ')}` : ''}`);
        }
      }
    }
    await stopAll(started.filter((s) => s !== origin));
    started.splice(0, started.length, origin);

    // ------------------------------------------------ TLS and HTTP/2
    let tlsReport: string[] = [];
    if (!skip.has('tls')) tlsReport = await tlsBench({ dir: join(tmp, 'tls'), origin: origin.url, objectsDir, env, seconds, reps, started, log: (line) => console.log(line) });

    // ------------------------------------------------ hits, pinned
    const pinnedRuns = new Map<SystemName, Run[]>();
    if (pinned) {
      const onCore0 = await startSet(join(tmp, 'pinned'), { origin: origin.url, objectsDir, env, cpu: 0, loggingEdges: false, nginxWorkers: 1 }, started);
      for (const [name, s] of Object.entries(onCore0)) await warm(name as SystemName, s, objects);
      for (let rep = 1; rep <= reps; rep++) {
        for (const system of (['reference', 'referenceEdgeHeaders', 'anycdn', 'nginx', 'varnish'] as SystemName[]).filter((name) => onCore0[name] !== undefined)) {
          const server = onCore0[system]!;
          const run = await runWrk(`${server.url}/bench/${HIT_SIZES[0].file}`, server, { seconds, threads: 1, connections: 64, wrkCpu: 1 });
          pinnedRuns.set(system, [...(pinnedRuns.get(system) ?? []), run]);
          console.log(`pinned rep ${rep} 1 KiB ${system.padEnd(10)} ${k(run.rps).padStart(7)} req/s  p99 ${fixed(run.p99Ms, 2)} ms  server ${fixed(run.serverCores, 2)} cores, others ${fixed(run.otherCores, 2)}; load ${fixed(run.load, 2)}`);
        }
      }
      await stopAll(started.filter((s) => s !== origin));
      started.splice(0, started.length, origin);
    }

    // ------------------------------------------------ verdicts, profile
    const verdicts: string[][] = [];
    let missed = false;
    // Like for like: the one-process edge against the one-process reference, the edge with one
    // worker per core against the reference on as many processes; against Varnish and nginx
    // (which use every core) the edge as it runs on every core: with workers when unpinned.
    const addVerdicts = (name: string, runs: Map<SystemName, Run[]>): void => {
      const best: SystemName = runs.has('anycdnWorkers') ? 'anycdnWorkers' : 'anycdn';
      const vsRef = ratio(runs.get('anycdn'), runs.get('reference'));
      const vsRefSameHeaders = ratio(runs.get('anycdn'), runs.get('referenceEdgeHeaders'));
      const vsRefWorkers = ratio(runs.get('anycdnWorkers'), runs.get('referenceWorkers'));
      const vsVarnish = ratio(runs.get(best), runs.get('varnish'));
      const vsNginx = ratio(runs.get(best), runs.get('nginx'));
      const verdict = (r: { value: number }, target: number): string => (Number.isNaN(r.value) ? 'not measured' : r.value >= target ? 'met' : 'missed');
      if (!name.startsWith('1 MiB')) missed ||= vsRef.value < TARGETS.reference || vsVarnish.value < TARGETS.varnish || vsRefWorkers.value < TARGETS.reference;
      const cpuPerRequest = (system: SystemName): number => median((runs.get(system) ?? []).map((r) => (r.serverCores / r.rps) * 1e6));
      verdicts.push([
        name,
        `${vsRef.text} — ${verdict(vsRef, TARGETS.reference)}`,
        vsRefSameHeaders.text,
        Number.isNaN(vsRefWorkers.value) ? '-' : `${vsRefWorkers.text} — ${verdict(vsRefWorkers, TARGETS.reference)}`,
        `${vsVarnish.text} — ${verdict(vsVarnish, TARGETS.varnish)} (${LABEL[best]})`,
        vsNginx.text,
        fixed(cpuPerRequest('anycdn') / cpuPerRequest('reference'), 1),
      ]);
    };
    if (!skip.has('hits')) for (const size of sizes) addVerdicts(size.name, hits.get(size.name)!);
    if (pinnedRuns.size > 0) addVerdicts('1 KiB, pinned', pinnedRuns);

    // What the access log costs: the same edge with it on (to a file) and off, and against Varnish.
    const small = hits.get('1 KiB') ?? new Map<SystemName, Run[]>();
    const logging: string[][] = [];
    const logCase = (label: string, r: { value: number; text: string }, target: number): void => {
      if (Number.isNaN(r.value)) return;
      const met = r.value >= target;
      missed ||= !met;
      logging.push([label, `${r.text} — ${met ? 'met' : 'missed'}`, `≥ ${target.toFixed(1)}`]);
    };
    logCase(`${LABEL.anycdnLog} / access log off`, ratio(small.get('anycdnLog'), small.get('anycdn')), TARGETS.accessLog);
    logCase(`${LABEL.anycdnWorkersLog} / access log off`, ratio(small.get('anycdnWorkersLog'), small.get('anycdnWorkers')), TARGETS.accessLog);
    logCase(`${LABEL.anycdnWorkersLog} / Varnish`, ratio(small.get('anycdnWorkersLog'), small.get('varnish')), TARGETS.varnish);

    let profile: string[] = [];
    if (values.profile === 'always' || (values.profile === 'auto' && missed)) {
      console.log('profiling the edge on 1 KiB hits');
      profile = await profileHit(tmp, { origin: origin.url, env, seconds, objects, out: values['profile-out'] }, started);
    }

    // ------------------------------------------------ report
    report.push(...header.map((l) => `- ${l}`), `- load average at end: ${os.loadavg().map((v) => v.toFixed(2)).join(' ')}`, '');
    for (const size of skip.has('hits') ? [] : sizes) {
      report.push(`#### Hits, ${size.name}: \`wrk -t2 -c64 -d${seconds}s --latency\`, ${reps} round(s), servers unpinned`, '', ...hitTable(hits.get(size.name)!), '');
    }
    if (pinnedRuns.size > 0) {
      report.push(`#### Hits, 1 KiB, server pinned to core 0 (\`taskset -c 0\`), \`taskset -c 1 wrk -t1 -c64 -d${seconds}s\`, ${reps} round(s)`, '', ...hitTable(pinnedRuns), '');
    }
    if (verdicts.length > 0) report.push(`#### Ratios (median of req/s; in brackets the range of ratios paired within a round)`, '', ...markdownTable(['case', `anycdn / reference, 1 process each (target ≥ ${TARGETS.reference})`, 'anycdn / reference sending the same header fields', `anycdn / reference, ${WORKERS} processes each (target ≥ ${TARGETS.reference})`, `anycdn / Varnish (target ≥ ${TARGETS.varnish.toFixed(1)})`, 'anycdn / nginx', 'server CPU per request, anycdn / reference (1 process)'], verdicts), '');
    if (logging.length > 0) {
      report.push('#### Access log cost (1 KiB hits; JSON lines to a file on disk)', '', ...markdownTable(['case', 'ratio of req/s (median; range paired in a round)', 'target'], logging), '');
      for (const line of logLines) report.push(`- ${line}`);
      report.push('');
    }
    if (herds.size > 0) {
      const rows = [...herds].map(([system, rs]) => [
        LABEL[system],
        rs.map((r) => r.originRequests ?? 'n/a').join(', '),
        `${rs.reduce((s, r) => s + r.ok, 0)}/${rs.length * herdSize}`,
        String(rs.reduce((s, r) => s + r.sampled, 0)),
        fixed(median(rs.map((r) => r.p50Ms)), 0),
        fixed(median(rs.map((r) => r.p99Ms)), 0),
        fixed(Math.max(...rs.map((r) => r.maxMs)), 0),
        Object.entries(rs.reduce<Record<string, number>>((acc, r) => (Object.entries(r.answers).forEach(([a, n]) => (acc[a] = (acc[a] ?? 0) + n)), acc), {}))
          .map(([a, n]) => `${a}: ${n}`)
          .join('; '),
      ]);
      report.push(`#### Cold-start herd: ${herdSize} concurrent GETs (one connection each) for a 5 MiB object nobody has cached, ${reps} round(s)`, '', ...markdownTable(['system', 'origin GETs per round', 'correct bodies', 'SHA-256 checked', 'p50 ms', 'p99 ms', 'max ms', 'answers'], rows), '');
      for (const [system, rs] of herds) for (const r of rs) if (r.failures.length > 0) notes.add(`herd ${system}: ${r.failures.length} failures, e.g. ${r.failures.slice(0, 3).join('; ')}`);
    }
    report.push(...tlsReport);
    if (profile.length > 0) report.push('#### Profile of the anycdn hit path', '', ...profile, '');
    if (notes.size > 0) report.push('#### Notes from the run', '', ...[...notes].map((n) => `- ${n}`), '');
    console.log('\n' + report.join('\n'));
  } catch (err) {
    for (const s of started) console.error(`logs of ${s.label} (pid ${s.pid}):\n${await tails(s.logs)}`);
    throw err;
  } finally {
    await stopAll(started);
    await rm(tmp, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

await main();
