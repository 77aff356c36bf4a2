/**
 * The servers of the edge benchmark as child processes, each with its own config, pid and temp
 * files under a folder the caller owns, bound to loopback ports, stopped by PID:
 *
 * - the anycdn origin and edge through the real CLI (`node dist/src/cli/anycdn.cjs origin|edge`),
 *   with MALLOC_ARENA_MAX=2 as the `anycdn` command sets it;
 * - the bare-Node reference (test/bench/hit-reference.ts);
 * - nginx `proxy_cache` and Varnish (malloc storage), configured as the peer baselines were
 *   (/work/shared/notes/peer-baselines.md), in front of the same origin.
 *
 * `cpu` pins a server to one core with `taskset -c N` at spawn (every thread and worker inherits
 * it). Also here: the CPU time of a process tree, read from /proc, to say how many cores a server
 * and everything else used during a measurement.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Pool } from 'undici';
import { CLI, REPO_ROOT } from './bench-lib.js';

export const PUBLISH_TOKEN = 'bench-edge-publish-token-0123456789';

export interface ServerProcess {
  /** What it is, for the report (`nginx 1.22.1 proxy_cache, 2 workers`). */
  label: string;
  pid: number;
  url: string;
  /** Log files, printed when something goes wrong. */
  logs: string[];
  /** SIGTERM to the main process (SIGKILL after 10 s), then SIGKILL to any descendant left over. */
  stop(): Promise<void>;
}

/** A loopback port free right now (the kernel's choice; the server binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export function hasCommand(name: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Spawns `command args`, under `taskset -c cpu` when `cpu` is set; stdout and stderr to `logFile`. */
function spawnLogged(command: string, args: string[], logFile: string, options: { cpu?: number; env?: NodeJS.ProcessEnv; stdout?: 'pipe' }): ChildProcess {
  const [cmd, argv] = options.cpu === undefined ? [command, args] : ['taskset', ['-c', String(options.cpu), command, ...args]];
  const log = openSync(logFile, 'a');
  try {
    return spawn(cmd, argv, { env: options.env ?? process.env, stdio: ['ignore', options.stdout ?? log, log] });
  } finally {
    closeSync(log);
  }
}

// ---------------------------------------------------------------- process trees and CPU time

interface ProcStat {
  pid: number;
  ppid: number;
  comm: string;
  /** utime + stime in clock ticks (USER_HZ = 100). */
  ticks: number;
  /** Minor page faults so far: pages mapped into the process (the index's, its heap's) without a read from disk. */
  minorFaults: number;
}

function readStat(pid: number): ProcStat | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { pid, ppid: Number(fields[1]), comm, ticks: Number(fields[11]) + Number(fields[12]), minorFaults: Number(fields[7]) };
  } catch {
    return undefined;
  }
}

/** `root` and every process below it, read from /proc now. */
export function processTree(root: number): ProcStat[] {
  const all = readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map((name) => readStat(Number(name)))
    .filter((s): s is ProcStat => s !== undefined);
  const tree = all.filter((s) => s.pid === root);
  for (let i = 0; i < tree.length; i++) tree.push(...all.filter((s) => s.ppid === tree[i]!.pid));
  return tree;
}

function machineBusyTicks(): number {
  const [, user, nice, system, , , irq, softirq, steal] = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).map(Number);
  return (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
}

/**
 * Cores used by each named group of process trees between start and stop, and by every process
 * outside the tree of `ownRoot` (this benchmark and everything it started): `others`. A run
 * during which others were busy is suspect.
 */
export function cpuMeter(groups: Record<string, number[]>, ownRoot = process.pid): { stop(): Record<string, number> } {
  const ticksOf = (roots: number[]): Map<number, number> => new Map(roots.flatMap((r) => processTree(r)).map((s) => [s.pid, s.ticks]));
  const all = { ...groups, own: [ownRoot] };
  const t0 = performance.now();
  const busy0 = machineBusyTicks();
  const before = Object.fromEntries(Object.entries(all).map(([name, roots]) => [name, ticksOf(roots)]));
  return {
    stop() {
      const seconds = (performance.now() - t0) / 1000;
      const busy = machineBusyTicks() - busy0;
      const ticks: Record<string, number> = {};
      for (const [name, roots] of Object.entries(all)) {
        ticks[name] = 0;
        for (const [pid, now] of ticksOf(roots)) ticks[name] += now - (before[name]!.get(pid) ?? 0);
      }
      const used: Record<string, number> = {};
      for (const name of Object.keys(groups)) used[name] = ticks[name]! / 100 / seconds;
      used['others'] = Math.max(0, (busy - ticks['own']!) / 100 / seconds);
      return used;
    },
  };
}

/**
 * Waits until processes outside this benchmark's tree use less than `threshold` cores over one
 * second, for at most `maxWaitMs`. Returns whether the machine was quiet in the end.
 */
export async function waitForIdleCpu(maxWaitMs: number, threshold = 0.2): Promise<boolean> {
  const deadline = Date.now() + maxWaitMs;
  for (;;) {
    const meter = cpuMeter({});
    await new Promise((r) => setTimeout(r, 1_000));
    if (meter.stop()['others']! < threshold) return true;
    if (Date.now() >= deadline) return false;
  }
}

/** Stops a server by its PID, then kills whatever it left behind (nginx workers, Varnish's child). */
function stopper(child: ChildProcess, graceMs = 10_000): () => Promise<void> {
  return async () => {
    const pid = child.pid;
    if (pid === undefined) return;
    const leftovers = processTree(pid).filter((s) => s.pid !== pid);
    if (child.exitCode === null && child.signalCode === null) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      });
    }
    await new Promise((r) => setTimeout(r, 200));
    for (const s of leftovers) {
      // Same PID and same command as before: still ours.
      if (readStat(s.pid)?.comm === s.comm) process.kill(s.pid, 'SIGKILL');
    }
  };
}

/** Polls `url` until it answers at all (any status), the process exits, or `timeoutMs` passes. */
async function waitForHttp(url: string, child: ChildProcess, logs: string[], timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const origin = new URL(url).origin;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`${url}: process exited (${child.exitCode ?? child.signalCode})\n${await tails(logs)}`);
    const pool = new Pool(origin, { connections: 1 });
    try {
      const res = await pool.request({ path: new URL(url).pathname, method: 'GET', headersTimeout: 2_000, bodyTimeout: 2_000 });
      await res.body.dump();
      return;
    } catch {
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`${url}: no answer within ${timeoutMs} ms\n${await tails(logs)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      await pool.close();
    }
  }
}

/** The last 3000 characters of each log file. */
export async function tails(logs: string[]): Promise<string> {
  const parts = await Promise.all(logs.map(async (f) => `--- ${f}\n${(await readFile(f, 'utf8').catch(() => '')).slice(-3000)}`));
  return parts.join('\n');
}

// ---------------------------------------------------------------- anycdn

export interface OriginProcess extends ServerProcess {
  put(path: string, data: Buffer, headers?: Record<string, string>): Promise<void>;
  /** `anycdn_origin_http_requests_total{method="GET",outcome="original"}`, summed over statuses. */
  originalGets(): Promise<number>;
}

export async function startOrigin(dir: string, env: NodeJS.ProcessEnv): Promise<OriginProcess> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const config = { listen: `127.0.0.1:${port}`, dataDir: join(dir, 'data'), publishToken: PUBLISH_TOKEN, purgeToken: 'bench-edge-purge-token-0123456789', logLevel: 'info' };
  const configFile = join(dir, 'origin.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logs = [join(dir, 'origin.log')];
  const child = spawnLogged(process.execPath, [CLI, 'origin', '--config', configFile], logs[0]!, { env });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/_cdn/healthz`, child, logs);
  const pool = new Pool(url, { connections: 2 });
  const stop = stopper(child);
  return {
    label: 'anycdn origin',
    pid: child.pid!,
    url,
    logs,
    async put(path, data, headers = {}) {
      const res = await pool.request({ path: `/_cdn/assets/${path}`, method: 'PUT', headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, ...headers }, body: data });
      const text = await res.body.text();
      if (res.statusCode !== 201 && res.statusCode !== 200) throw new Error(`PUT ${path}: ${res.statusCode} ${text}`);
    },
    async originalGets() {
      const res = await pool.request({ path: '/_cdn/metrics', method: 'GET' });
      let total = 0;
      for (const line of (await res.body.text()).split('\n')) {
        if (line.startsWith('anycdn_origin_http_requests_total{') && line.includes('method="GET"') && line.includes('outcome="original"')) {
          total += Number(line.slice(line.lastIndexOf(' ') + 1));
        }
      }
      return total;
    },
    async stop() {
      await pool.close();
      await stop();
    },
  };
}

export interface EdgeOptions {
  upstream: string;
  env: NodeJS.ProcessEnv;
  /** The access log: `file` writes the default JSON lines to DIR/access.log, as operators run it; `off` writes none. */
  accessLog: 'file' | 'off';
  cpu?: number;
  /** Extra node flags, e.g. `--cpu-prof`. */
  nodeArgs?: string[];
  /** The edge's `workers` setting; default 1. */
  workers?: number;
  /** More settings for the edge's config (e.g. `memory`, `disk`, `listen`), over the defaults above. */
  config?: Record<string, unknown>;
  /** The CLI script to run: another checkout's build, as a reference measured in the same run; default this tree's. */
  cli?: string;
}

/**
 * `anycdn edge` with its defaults (memory tier 256 MiB for objects up to 1 MiB, disk 10 GiB, log
 * level info), drain 0, the access log to a file on disk or off.
 */
export async function startEdge(dir: string, options: EdgeOptions): Promise<ServerProcess> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const workers = options.workers ?? 1;
  const accessLog = options.accessLog === 'file' ? { path: join(dir, 'access.log') } : false;
  const config = { listen: `127.0.0.1:${port}`, upstream: options.upstream, pop: 'bench', node: 'edge-1', cacheDir: join(dir, 'cache'), logLevel: 'info', accessLog, drain: 0, workers, ...options.config };
  const configFile = join(dir, 'edge.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const logs = [join(dir, 'edge.log')];
  const child = spawnLogged(process.execPath, [...(options.nodeArgs ?? []), options.cli ?? CLI, 'edge', '--config', configFile], logs[0]!, { env: options.env, cpu: options.cpu });
  const url = `http://${(config.listen as string).replace(/^0\.0\.0\.0:/, '127.0.0.1:')}`;
  await waitForHttp(`${url}/_cdn/healthz`, child, logs);
  return { label: `anycdn edge (access log ${options.accessLog === 'file' ? 'to a file' : 'off'}, ${workers === 1 ? '1 process' : `${workers} workers + shield`})`, pid: child.pid!, url, logs, stop: stopper(child) };
}

/** The bare-Node reference serving every file of `objectsDir` at /bench/{name}. */
export async function startReference(dir: string, objectsDir: string, options: { env: NodeJS.ProcessEnv; cpu?: number; workers?: number; edgeHeaders?: boolean }): Promise<ServerProcess> {
  const workers = options.workers ?? 1;
  const args = ['--dir', objectsDir, '--prefix', 'bench', '--workers', String(workers), ...(options.edgeHeaders === true ? ['--edge-headers'] : [])];
  const label = `node:http, Buffer from memory, ${workers === 1 ? '1 process' : `${workers} processes (node:cluster)`}${options.edgeHeaders === true ? ', with the header fields of an anycdn hit' : ''}`;
  return startNodeServer(dir, 'hit-reference.js', args, label, options);
}

/** The bare-Node miss reference (test/bench/miss-reference.ts) in front of `origin`, its files under DIR/files. */
export async function startMissReference(dir: string, origin: string, options: { env: NodeJS.ProcessEnv; workers?: number }): Promise<ServerProcess> {
  const workers = options.workers ?? 1;
  const args = ['--dir', join(dir, 'files'), '--origin', origin, '--workers', String(workers)];
  return startNodeServer(dir, 'miss-reference.js', args, `node:http + undici Pool, body to a file, ${workers === 1 ? '1 process' : `${workers} processes (node:cluster)`}`, options);
}

/** Spawns dist/test/bench/`script` and waits for its ready line `{"url":…}` on stdout. */
async function startNodeServer(dir: string, script: string, args: string[], label: string, options: { env: NodeJS.ProcessEnv; cpu?: number }): Promise<ServerProcess> {
  await mkdir(dir, { recursive: true });
  const logs = [join(dir, 'reference.log')];
  const child = spawnLogged(process.execPath, [join(REPO_ROOT, 'dist/test/bench', script), ...args], logs[0]!, { env: options.env, cpu: options.cpu, stdout: 'pipe' });
  const lines = createInterface({ input: child.stdout! });
  const first = await Promise.race([
    new Promise<string>((resolve) => lines.once('line', resolve)),
    new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)))),
    new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${script} did not start in 20 s`)), 20_000).unref()),
  ]);
  lines.close();
  child.stdout!.resume();
  const { url } = JSON.parse(first) as { url: string };
  return { label, pid: child.pid!, url, logs, stop: stopper(child) };
}

// ---------------------------------------------------------------- nginx proxy_cache

export interface PeerOptions {
  /** `http://127.0.0.1:PORT` of the origin. */
  origin: string;
  cpu?: number;
}

/**
 * nginx.conf for `proxy_cache` as in the peer baselines: a 10 MB key zone, 1 GB on disk,
 * `use_temp_path=off`, a keep-alive upstream, `proxy_cache_valid 200 1h`, `proxy_cache_lock on`,
 * keep-alive requests raised (the default 1000 makes wrk reconnect), no access log. Added for the
 * benchmark only: `X-Cache: $upstream_cache_status`, to check that warmed requests are hits.
 */
export function nginxConfig(o: { dir: string; port: number; originHost: string; originPort: number; workers: number; user?: string }): string {
  return `# generated by test/bench/edge-peers.ts
${o.user === undefined ? '' : `user ${o.user};`}
worker_processes ${o.workers};
daemon off;
master_process on;
pid ${o.dir}/nginx.pid;
error_log ${o.dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on;
  tcp_nopush on;
  keepalive_timeout 65s;
  keepalive_requests 10000000;
  client_body_temp_path ${o.dir}/tmp/client_body;
  proxy_temp_path ${o.dir}/tmp/proxy;
  fastcgi_temp_path ${o.dir}/tmp/fastcgi;
  uwsgi_temp_path ${o.dir}/tmp/uwsgi;
  scgi_temp_path ${o.dir}/tmp/scgi;
  proxy_cache_path ${o.dir}/cache levels=1:2 keys_zone=edge:10m max_size=1g inactive=1h use_temp_path=off;
  upstream origin {
    server ${o.originHost}:${o.originPort};
    keepalive 32;
  }
  server {
    listen 127.0.0.1:${o.port};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
      add_header X-Cache $upstream_cache_status;
    }
  }
}
`;
}

export async function startNginx(dir: string, options: PeerOptions & { workers: number }): Promise<ServerProcess> {
  for (const sub of ['tmp', 'cache']) await mkdir(join(dir, sub), { recursive: true });
  const port = await freePort();
  const origin = new URL(options.origin);
  // As root, nginx's workers switch to nobody: give them the folder.
  const asRoot = process.getuid?.() === 0;
  if (asRoot) for (const path of [dir, join(dir, 'tmp'), join(dir, 'cache')]) chownSync(path, 65534, 65534);
  const configFile = join(dir, 'nginx.conf');
  await writeFile(configFile, nginxConfig({ dir, port, originHost: origin.hostname, originPort: Number(origin.port), workers: options.workers, user: asRoot ? 'nobody nogroup' : undefined }));
  const logs = [join(dir, 'stderr.log'), join(dir, 'error.log')];
  const child = spawnLogged('nginx', ['-p', dir, '-c', configFile, '-e', join(dir, 'error.log')], logs[0]!, { cpu: options.cpu });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/_cdn/healthz`, child, logs);
  return { label: `nginx proxy_cache, ${options.workers} worker(s)`, pid: child.pid!, url, logs, stop: stopper(child) };
}

// ---------------------------------------------------------------- Varnish

/** VCL as in the peer baselines: one backend (the origin), every fetched object kept 1 h. */
export function varnishVcl(o: { originHost: string; originPort: number }): string {
  return `vcl 4.1;
# generated by test/bench/edge-peers.ts
backend origin {
  .host = "${o.originHost}";
  .port = "${o.originPort}";
}
sub vcl_backend_response {
  set beresp.ttl = 1h;
}
`;
}

/** `varnishd -F -a 127.0.0.1:PORT -s malloc,256m -n DIR -f VCL` (-F: foreground, so the PID is ours). */
export async function startVarnish(dir: string, options: PeerOptions): Promise<ServerProcess> {
  await mkdir(dir, { recursive: true });
  const port = await freePort();
  const origin = new URL(options.origin);
  const vcl = join(dir, 'bench.vcl');
  await writeFile(vcl, varnishVcl({ originHost: origin.hostname, originPort: Number(origin.port) }));
  const logs = [join(dir, 'varnishd.log')];
  const args = ['-F', '-a', `127.0.0.1:${port}`, '-T', '127.0.0.1:0', '-s', 'malloc,256m', '-n', join(dir, 'work'), '-f', vcl];
  const child = spawnLogged('varnishd', args, logs[0]!, { cpu: options.cpu });
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/_cdn/healthz`, child, logs, 60_000);
  return { label: 'Varnish, malloc 256m', pid: child.pid!, url, logs, stop: stopper(child) };
}

/** The versions of the peers and of wrk, for the report. */
export function peerVersions(): string[] {
  const firstLine = (shell: string): string => {
    try {
      return execFileSync('sh', ['-c', `${shell} 2>&1 | head -1`], { encoding: 'utf8' }).trim();
    } catch {
      return `${shell}: ?`;
    }
  };
  return [firstLine('nginx -v'), firstLine('varnishd -V'), firstLine('wrk -v')];
}

/** Memory of a process tree from /proc: anonymous, shared and file-backed resident bytes. */
export function treeMemory(pid: number): { anon: number; shmem: number; file: number; processes: number } {
  const out = { anon: 0, shmem: 0, file: 0, processes: 0 };
  for (const p of processTree(pid)) {
    let status: string;
    try {
      status = readFileSync(`/proc/${p.pid}/status`, 'utf8');
    } catch {
      continue;
    }
    const kb = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    out.anon += kb('RssAnon');
    out.shmem += kb('RssShmem');
    out.file += kb('RssFile');
    out.processes += 1;
  }
  return out;
}
