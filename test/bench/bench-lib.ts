/**
 * Shared pieces of the benchmark scripts in test/bench (run with node after `tsc`, not vitest):
 * statistics, a closed-loop load generator with a fixed number of operations in flight, resident
 * memory read from /proc, the origin started as a child process through the real CLI, and a
 * description of the machine. Nothing here imports sharp statically: a benchmark child that runs
 * another sharp build (ipx bundles its own) must not load ours as well.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type Socket } from 'node:net';
import { Pool } from 'undici';

/** The repository root (this file runs from dist/test/bench/). */
export const REPO_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CLI = join(REPO_ROOT, 'dist/src/cli/anycdn.cjs');

// ---------------------------------------------------------------- statistics

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Least-squares slope of y over x, with its standard error (NaN below 3 points). */
export function linearFit(points: readonly { x: number; y: number }[]): { slope: number; stderr: number } {
  const n = points.length;
  if (n < 2) return { slope: NaN, stderr: NaN };
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxx = 0;
  let sxy = 0;
  for (const p of points) {
    sxx += (p.x - mx) ** 2;
    sxy += (p.x - mx) * (p.y - my);
  }
  const slope = sxy / sxx;
  if (n < 3) return { slope, stderr: NaN };
  const residual = points.reduce((s, p) => s + (p.y - my - slope * (p.x - mx)) ** 2, 0);
  return { slope, stderr: Math.sqrt(residual / (n - 2) / sxx) };
}

// ---------------------------------------------------------------- closed-loop load

export interface LoadResult {
  /** Operations completed inside the measured window. */
  ops: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Mean bytes returned per measured operation (output size, to check systems did the same work). */
  meanBytes: number;
  /** Every operation started, warm-up and overrun included (to check the origin generated each). */
  started: number;
}

export interface LoadOptions {
  /** Operations kept in flight: each worker starts the next as soon as its previous one ends. */
  inFlight: number;
  /** Length of the measured window. */
  durationMs: number;
  /**
   * Time the loop runs before the window opens. The window starts in steady state (all workers
   * busy, at staggered points of their operations), so completions counted in it are an unbiased
   * throughput estimate, unlike a window that opens with every worker starting at once.
   */
  warmupMs: number;
  /** One operation; returns the bytes it produced. */
  op: () => Promise<number>;
}

/**
 * Runs `op` with `inFlight` operations at once for warm-up + window. Counts the operations that
 * complete inside the window and their latencies; once the window closes no new operation starts
 * and the loop waits for the ones still running.
 */
export async function closedLoop(options: LoadOptions): Promise<LoadResult> {
  const startedAt = performance.now();
  const windowStart = startedAt + options.warmupMs;
  const windowEnd = windowStart + options.durationMs;
  const latencies: number[] = [];
  let bytes = 0;
  let started = 0;
  async function worker(): Promise<void> {
    while (performance.now() < windowEnd) {
      const t0 = performance.now();
      started++;
      const size = await options.op();
      const t1 = performance.now();
      if (t1 >= windowStart && t1 < windowEnd) {
        latencies.push(t1 - t0);
        bytes += size;
      }
    }
  }
  await Promise.all(Array.from({ length: options.inFlight }, worker));
  latencies.sort((a, b) => a - b);
  return {
    ops: latencies.length,
    opsPerSec: latencies.length / (options.durationMs / 1000),
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    meanBytes: latencies.length === 0 ? 0 : bytes / latencies.length,
    started,
  };
}

/**
 * An HTTP/1.1 GET client with `connections` keep-alive sockets, one request on each at a time;
 * `get` throws on any status but 200. Deliberately small: on a 2-core machine the load generator
 * takes CPU from the server it measures, and undici's Pool used ~0.65 ms of CPU per 24 KB answer
 * here against ~0.3 ms for this (BENCHMARKS.md, "Transform"). Bodies are read by Content-Length or
 * chunked; anything else is an error.
 */
export function httpGetter(baseUrl: string, connections: number): { get(path: string): Promise<Buffer>; close(): Promise<void> } {
  const url = new URL(baseUrl);
  const idle: GetConnection[] = [];
  const waiting: ((c: GetConnection) => void)[] = [];
  const all = new Set<GetConnection>();
  const acquire = (): Promise<GetConnection> => {
    // Idle connections the server has closed meanwhile (keep-alive timeout) are skipped.
    for (let ready = idle.pop(); ready !== undefined; ready = idle.pop()) if (ready.usable) return Promise.resolve(ready);
    if (all.size < connections) {
      const made = new GetConnection(url, () => all.delete(made));
      all.add(made);
      return Promise.resolve(made);
    }
    return new Promise((resolve) => waiting.push(resolve));
  };
  const release = (c: GetConnection): void => {
    const next = waiting.shift();
    if (next !== undefined) next(c);
    else idle.push(c);
  };
  return {
    async get(path) {
      for (let attempt = 1; ; attempt++) {
        const c = await acquire();
        try {
          const { status, body } = await c.get(path);
          if (status !== 200) throw new Error(`GET ${baseUrl}${path}: ${status} ${body.toString('utf8', 0, 300)}`);
          return body;
        } catch (err) {
          // A kept-alive connection the server closed as the request went out: once more, on a new one.
          if (err instanceof StaleConnection && attempt === 1) continue;
          throw err;
        } finally {
          // A broken connection is dropped (the next get opens a new one); a live one serves again.
          if (c.usable) release(c);
          else if (waiting.length > 0) void acquire().then(release);
        }
      }
    },
    async close() {
      for (const c of all) c.destroy();
      all.clear();
    },
  };
}

/** A reused connection ended before any byte of the answer: the request may be sent again. */
class StaleConnection extends Error {}

/** One keep-alive connection of httpGetter. */
class GetConnection {
  private readonly socket: Socket;
  /** Bytes of the pending answer received so far, and their total. */
  private chunks: Buffer[] = [];
  private size = 0;
  /** The pending answer's whole length once its head has said it (Content-Length framing). */
  private needed: number | undefined;
  private pending: { resolve(r: { status: number; body: Buffer }): void; reject(err: Error): void } | undefined;
  /** Answers completed on this connection. */
  private answered = 0;
  usable = true;

  private readonly host: string;

  constructor(
    url: URL,
    private readonly onGone: () => void,
  ) {
    this.host = url.host;
    this.socket = connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 80) });
    this.socket.setNoDelay(true);
    this.socket.on('data', (chunk: Buffer) => {
      this.chunks.push(chunk);
      this.size += chunk.length;
      // A body still short of its known length is neither joined nor parsed again.
      if (this.needed === undefined || this.size >= this.needed) this.parse();
    });
    this.socket.on('error', (err) => this.broken(err.message));
    this.socket.on('close', () => this.broken('connection closed before the answer was complete'));
  }

  get(path: string): Promise<{ status: number; body: Buffer }> {
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
      this.socket.write(`GET ${path} HTTP/1.1\r\nHost: ${this.host}\r\n\r\n`);
    });
  }

  destroy(): void {
    this.socket.destroy();
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    p?.reject(err);
  }

  /** Completes the pending answer once its head and whole body are buffered. */
  private parse(): void {
    if (this.pending === undefined) return this.broken('bytes arrived with no request pending');
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.size)];
    const buf = this.chunks[0]!;
    const headEnd = buf.indexOf('\r\n\r\n');
    if (headEnd < 0) {
      if (buf.length > 65_536) this.broken('answer head longer than 64 KiB');
      return;
    }
    const lines = buf.toString('latin1', 0, headEnd).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
    const fields = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      fields.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    const bodyStart = headEnd + 4;
    let body: Buffer | undefined;
    let end: number;
    if (/\bchunked\b/i.test(fields.get('transfer-encoding') ?? '')) {
      const parts: Buffer[] = [];
      let at = bodyStart;
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', at);
        if (lineEnd < 0) return;
        const size = parseInt(buf.toString('latin1', at, lineEnd), 16);
        if (!Number.isFinite(size)) return this.broken('bad chunk size');
        if (size === 0) {
          // The last chunk's line ends where the (usually empty) trailer section starts.
          const trailerEnd = buf.indexOf('\r\n\r\n', lineEnd);
          if (trailerEnd < 0) return;
          end = trailerEnd + 4;
          body = Buffer.concat(parts);
          break;
        }
        if (buf.length < lineEnd + 2 + size + 2) return;
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        at = lineEnd + 2 + size + 2;
      }
    } else {
      const length = Number(fields.get('content-length'));
      if (!Number.isSafeInteger(length)) return this.broken('answer has neither Content-Length nor chunked framing');
      end = bodyStart + length;
      if (buf.length < end) {
        this.needed = end;
        return;
      }
      body = buf.subarray(bodyStart, end);
    }
    if (end !== buf.length) return this.broken('bytes after the answer');
    this.chunks = [];
    this.size = 0;
    this.needed = undefined;
    const p = this.pending;
    this.pending = undefined;
    this.answered++;
    if (fields.get('connection')?.toLowerCase() === 'close') this.retire();
    p.resolve({ status, body });
  }

  /** Fails the pending request, if any, and takes this connection out of use. */
  private broken(why: string): void {
    this.retire();
    this.fail(this.answered > 0 && this.size === 0 ? new StaleConnection(why) : new Error(why));
  }

  private retire(): void {
    if (!this.usable) return;
    this.usable = false;
    this.socket.destroy();
    this.onGone();
  }
}

// ---------------------------------------------------------------- memory

export interface ProcMemory {
  /** Resident set size now, MiB (VmRSS). */
  rssMiB: number;
  /** Peak resident set size since the process started, MiB (VmHWM). */
  hwmMiB: number;
}

/** VmRSS and VmHWM of a live process from /proc/PID/status (Linux). */
export function procMemory(pid: number): ProcMemory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string): number => {
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status);
    if (match === null) throw new Error(`no ${field} in /proc/${pid}/status`);
    return Number(match[1]);
  };
  return { rssMiB: kib('VmRSS') / 1024, hwmMiB: kib('VmHWM') / 1024 };
}

export interface RssSample {
  /** Seconds since sampling started. */
  t: number;
  rssMiB: number;
  hwmMiB: number;
}

/** Samples a process's memory every `intervalMs` until `stop()`, which returns the samples. */
export function sampleMemory(pid: number, intervalMs: number): { stop(): RssSample[] } {
  const samples: RssSample[] = [];
  const t0 = performance.now();
  const take = (): void => {
    try {
      samples.push({ t: (performance.now() - t0) / 1000, ...procMemory(pid) });
    } catch {
      // the process is gone; the caller notices through its own requests
    }
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

// ---------------------------------------------------------------- CPU used by others

/** Clock ticks per second of /proc/stat and /proc/PID/stat (USER_HZ, 100 on Linux). */
const TICKS = 100;

function machineBusyTicks(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [, user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).map(Number);
  return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
}

/** CPU seconds (user + system, all threads) a live process has used; 0 once it is gone. */
export function processCpuSeconds(pid: number): number {
  return processTicks(pid) / TICKS;
}

/**
 * CPU seconds a live process has used, by thread: its main thread (the event loop), libvips'
 * workers, and every other thread (libuv's pool, where sharp runs the rest of a pipeline, and
 * V8's helpers). Threads that have ended are not counted: compare samples of long-lived threads.
 */
export function threadCpuSeconds(pid: number): { main: number; vips: number; other: number } {
  const out = { main: 0, vips: 0, other: 0 };
  let tids: string[] = [];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
      const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const seconds = (Number(fields[11]) + Number(fields[12])) / TICKS;
      if (tid === String(pid)) out.main += seconds;
      else if (name.startsWith('libvips')) out.vips += seconds;
      else out.other += seconds;
    } catch {
      // the thread ended between listing and reading
    }
  }
  return out;
}

function processTicks(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of proc(5))
  } catch {
    return 0;
  }
}

/**
 * Measures how many cores, on average, processes other than `pids` kept busy between start and
 * stop: the machine is shared (other agents run tests), and a run during which they did is not
 * comparable with one during which they did not.
 */
export function foreignCpu(pids: readonly number[]): { stop(): number } {
  const t0 = performance.now();
  const busy0 = machineBusyTicks();
  const own0 = pids.reduce((s, pid) => s + processTicks(pid), 0);
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000;
      const busy = machineBusyTicks() - busy0;
      const own = pids.reduce((s, pid) => s + processTicks(pid), 0) - own0;
      return Math.max(0, (busy - own) / TICKS / seconds);
    },
  };
}

/**
 * Waits, at most `maxWaitMs`, for a second in which other processes used under `threshold`
 * cores. Returns the seconds waited and whether the machine was quiet in the end.
 */
export async function waitForQuiet(pids: readonly number[], maxWaitMs: number, threshold = 0.15): Promise<{ waited: number; quiet: boolean }> {
  const t0 = performance.now();
  for (;;) {
    const meter = foreignCpu(pids);
    await new Promise((done) => setTimeout(done, 1_000));
    const quiet = meter.stop() < threshold;
    const waited = (performance.now() - t0) / 1000;
    if (quiet || waited * 1000 >= maxWaitMs) return { waited, quiet };
  }
}

// ---------------------------------------------------------------- the origin as a child process

export const PUBLISH_TOKEN = 'bench-publish-token-0123456789';
const PURGE_TOKEN = 'bench-purge-token-0123456789';

export interface OriginChild {
  pid: number;
  url: string;
  /** Uploads `data` at `path` through the publisher API. */
  put(path: string, data: Buffer): Promise<void>;
  /** Requests counted by the origin's metrics so far, by outcome (`variant-generated`, `variant-stored`, …). */
  outcomes(): Promise<Record<string, number>>;
  /** SIGTERM, then SIGKILL after 10 s; resolves when the process has exited. */
  stop(): Promise<void>;
}

/**
 * Starts `node dist/src/cli/anycdn.cjs origin --config DIR/origin.json` on a loopback port chosen by
 * the kernel, with its data in DIR/data and its JSON log in DIR/origin.log (a file, so the
 * benchmark spends no CPU reading it). `env` is the child's whole environment: pass
 * MALLOC_ARENA_MAX=2 to run it as the `anycdn` command does. `images` overrides image settings
 * (default: none, the origin's defaults); `nodeArgs` go to node before the script (`--cpu-prof`).
 */
export async function startOriginChild(
  dir: string,
  env: NodeJS.ProcessEnv,
  options: { logLevel?: string; images?: Record<string, unknown>; nodeArgs?: string[] } = {},
): Promise<OriginChild> {
  const configFile = join(dir, 'origin.json');
  const logFile = join(dir, 'origin.log');
  const config = {
    listen: '127.0.0.1:0',
    dataDir: join(dir, 'data'),
    publishToken: PUBLISH_TOKEN,
    purgeToken: PURGE_TOKEN,
    logLevel: options.logLevel ?? 'info',
    images: options.images ?? {},
  };
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const log = openSync(logFile, 'w');
  let child: ChildProcess;
  try {
    child = spawn(process.execPath, [...(options.nodeArgs ?? []), CLI, 'origin', '--config', configFile], { env, stdio: ['ignore', log, log] });
  } finally {
    closeSync(log);
  }
  const url = await waitForLogUrl(child, logFile, 20_000);
  return {
    pid: child.pid!,
    url,
    async put(path, data) {
      const pool = new Pool(url, { connections: 1 });
      try {
        const res = await pool.request({ path: `/_cdn/assets/${path}`, method: 'PUT', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` }, body: data });
        const text = await res.body.text();
        if (res.statusCode !== 201 && res.statusCode !== 200) throw new Error(`PUT ${path}: ${res.statusCode} ${text}`);
      } finally {
        await pool.close();
      }
    },
    async outcomes() {
      const pool = new Pool(url, { connections: 1 });
      try {
        const res = await pool.request({ path: '/_cdn/metrics', method: 'GET' });
        return requestsByOutcome(await res.body.text());
      } finally {
        await pool.close();
      }
    },
    stop: () => stopChild(child),
  };
}

/** Sums `anycdn_origin_http_requests_total` by its `outcome` label. */
function requestsByOutcome(metrics: string): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('anycdn_origin_http_requests_total{')) continue;
    const outcome = /outcome="([^"]*)"/.exec(line)?.[1] ?? '';
    counts[outcome] = (counts[outcome] ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return counts;
}

async function waitForLogUrl(child: ChildProcess, logFile: string, timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`origin exited (${child.exitCode ?? child.signalCode}):\n${await readFile(logFile, 'utf8')}`);
    }
    const text = await readFile(logFile, 'utf8');
    for (const line of text.split('\n')) {
      if (!line.startsWith('{')) continue;
      const record = JSON.parse(line) as { msg?: string; url?: string };
      if (record.msg === 'origin listening' && record.url !== undefined) return record.url;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await stopChild(child);
  throw new Error(`origin did not log "origin listening" within ${timeoutMs} ms:\n${await readFile(logFile, 'utf8')}`);
}

/** Stops one child by its PID: SIGTERM, SIGKILL after `graceMs`; resolves once it has exited. */
export function stopChild(child: ChildProcess, graceMs = 10_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/**
 * Re-runs this script in a child with `MALLOC_ARENA_MAX=2` unless it already has it, so what runs
 * in the benchmark's own process (the raw sharp reference) has the allocator settings of the
 * `anycdn` command. Returns the child's exit code, or undefined when this process is the one to
 * do the work.
 */
export async function rerunWithArenaMax(): Promise<number | undefined> {
  if (process.env['MALLOC_ARENA_MAX'] === '2') return undefined;
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    env: { ...process.env, MALLOC_ARENA_MAX: '2' },
    stdio: 'inherit',
  });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve(code ?? (signal === null ? 1 : 128))));
}

// ---------------------------------------------------------------- test images and the machine

/**
 * A photo-like JPEG made with sharp: a colour gradient with smooth blobs and gaussian grain, so
 * the encoders see both flat areas and texture (pure noise would be an unrealistic worst case).
 */
export async function photoLikeJpeg(width: number, height: number, seed = 1): Promise<Buffer> {
  const { default: sharp } = await import('sharp');
  const raw = Buffer.alloc(width * height * 3);
  let state = seed >>> 0 || 1;
  const rand = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
  const blobs = Array.from({ length: 12 }, () => ({ x: rand() * width, y: rand() * height, r: (0.1 + rand() * 0.3) * width, c: [rand(), rand(), rand()] }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = (x / width) * 120 + 40;
      let g = (y / height) * 120 + 40;
      let b = 160 - (x / width) * 80;
      for (const blob of blobs) {
        const d = Math.hypot(x - blob.x, y - blob.y) / blob.r;
        if (d < 1) {
          const k = (1 - d) * 90;
          r += k * (blob.c[0]! - 0.5);
          g += k * (blob.c[1]! - 0.5);
          b += k * (blob.c[2]! - 0.5);
        }
      }
      const grain = (rand() + rand() + rand() - 1.5) * 24;
      const i = (y * width + x) * 3;
      raw[i] = clampByte(r + grain);
      raw[i + 1] = clampByte(g + grain);
      raw[i + 2] = clampByte(b + grain);
    }
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

function clampByte(v: number): number {
  return v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
}

/** One line per fact about the machine and the run, for the report. */
export async function machineReport(): Promise<string[]> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const { default: sharp } = await import('sharp');
  return [
    `date: ${new Date().toISOString()}`,
    `cpu: ${os.availableParallelism()} x ${model}; RAM ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `node ${process.version}; sharp ${sharp.versions.sharp} (libvips ${sharp.versions.vips}, aom ${sharp.versions.aom ?? '?'}); MALLOC_ARENA_MAX=${process.env['MALLOC_ARENA_MAX'] ?? 'unset'}`,
    `load average at start: ${loadAverage()}`,
  ];
}

export function loadAverage(): string {
  return os.loadavg().map((v) => v.toFixed(2)).join(' ');
}

// ---------------------------------------------------------------- output

/** A plain-text table with right-aligned columns after the first. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

export function fixed(value: number, digits = 1): string {
  return Number.isFinite(value) ? value.toFixed(digits) : '-';
}
