/**
 * The TLS and HTTP/2 part of `bench:edge`: 1 KiB hits over HTTPS (TLS 1.3, one ECDSA P-256
 * certificate made for the run and used by every server), each server on two processes:
 *
 * - anycdn edge, `workers: 2`, its `tls` listener (and once more with the quick front off on TLS
 *   connections, to measure what the front saves over TLS/HTTP/1.1);
 * - nginx `proxy_cache` with `listen … ssl http2`, 2 workers, keepalive_requests raised;
 * - bare Node `https` (2 processes) and bare Node `http2` (2 processes) serving the Buffer
 *   (test/bench/hit-reference.ts --tls), HTTP/2 twice: through the request API (the same listener
 *   as the https reference) and through the core stream API (one respond and end per stream, the
 *   least Node can do); once more over the core API sending the fields of the edge's own hit
 *   (read from the edge after the warm-up): what the fields cost, apart from the edge's work;
 * - Varnish behind hitch (2 workers, PROXY v2), HTTP/1.1 only.
 *
 * Load: HTTP/1.1 with `wrk -t2 -c64` over TLS; HTTP/2 with `h2load -t2 -c16 -m8`; new TLS
 * connections per second with `openssl s_time` (two clients at once), full handshakes (`-new`)
 * and resumed ones (`-reuse`), against anycdn and nginx. Every number is from this run, on this
 * machine, at once: ratios, never absolute targets.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, openSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:http2';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { CLI, fixed, median, REPO_ROOT } from './bench-lib.js';
import { cpuMeter, freePort, hasCommand, type ServerProcess } from './edge-peers.js';

const run = promisify(execFile);
const OBJECT = '/bench/obj-1k.bin';

export interface TlsBenchOptions {
  dir: string;
  /** `http://127.0.0.1:PORT` of the anycdn origin holding /bench/obj-1k.bin. */
  origin: string;
  /** Folder with obj-1k.bin, for the bare-Node references. */
  objectsDir: string;
  env: NodeJS.ProcessEnv;
  seconds: number;
  reps: number;
  started: ServerProcess[];
  log: (line: string) => void;
}

type System = 'anycdn' | 'anycdnNoFront' | 'nginx' | 'nodeHttps' | 'nodeH2Compat' | 'nodeH2' | 'nodeH2EdgeFields' | 'varnishHitch';
const LABEL: Record<System, string> = {
  anycdn: 'anycdn edge, workers: 2',
  anycdnNoFront: 'anycdn edge, workers: 2, quick front off on TLS',
  nginx: 'nginx ssl http2 proxy_cache, 2 workers',
  nodeHttps: 'bare Node https, 2 processes',
  nodeH2Compat: 'bare Node http2, request API (the https listener), 2 processes',
  nodeH2: 'bare Node http2, core stream API, 2 processes',
  nodeH2EdgeFields: "bare Node http2 sending the edge's fields, 2 processes",
  varnishHitch: 'Varnish behind hitch (PROXY v2), 2 hitch workers',
};

/** Runs the TLS section; returns its part of the report (Markdown lines). */
export async function tlsBench(o: TlsBenchOptions): Promise<string[]> {
  for (const tool of ['openssl', 'h2load']) {
    if (!hasCommand(tool)) return [`#### TLS and HTTP/2`, '', `- not measured: ${tool} is not installed (apt-get install -y openssl nghttp2-client hitch)`, ''];
  }
  await mkdir(o.dir, { recursive: true });
  const cert = join(o.dir, 'cert.pem');
  const key = join(o.dir, 'key.pem');
  await run('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1']);
  if (process.getuid?.() === 0) chownSync(o.dir, 65534, 65534); // nginx workers (nobody) read the key
  const pair = { cert, key };
  const servers: Partial<Record<System, ServerProcess & { https: string }>> = {};
  const start = async (name: System, make: () => Promise<ServerProcess & { https: string }>): Promise<void> => {
    try {
      const s = await make();
      o.started.push(s);
      servers[name] = s;
      o.log(`${LABEL[name]}: pid ${s.pid} ${s.https}`);
    } catch (err) {
      o.log(`${LABEL[name]}: not started (${(err as Error).message})`);
    }
  };
  await start('anycdn', () => startTlsEdge(join(o.dir, 'edge'), { ...o, pair, quickFront: true }));
  await start('anycdnNoFront', () => startTlsEdge(join(o.dir, 'edge-nofront'), { ...o, pair, quickFront: false }));
  if (hasCommand('nginx')) await start('nginx', () => startTlsNginx(join(o.dir, 'nginx'), { origin: o.origin, pair }));
  await start('nodeHttps', () => startTlsReference(join(o.dir, 'ref-https'), { ...o, pair, protocol: 'https' }));
  await start('nodeH2Compat', () => startTlsReference(join(o.dir, 'ref-h2-compat'), { ...o, pair, protocol: 'h2-compat' }));
  await start('nodeH2', () => startTlsReference(join(o.dir, 'ref-h2'), { ...o, pair, protocol: 'h2' }));
  if (hasCommand('varnishd') && hasCommand('hitch')) await start('varnishHitch', () => startVarnishHitch(join(o.dir, 'varnish'), { origin: o.origin, pair }));
  // Warm: every cache has the object, fetched over its own TLS listener.
  for (const s of Object.values(servers)) for (let i = 0; i < 3; i++) await run('curl', ['-sk', '-o', '/dev/null', `${s.https}${OBJECT}`]);
  if (servers.anycdn !== undefined) {
    const fieldsFile = join(o.dir, 'edge-fields.json');
    const fields = await h2Fields(`${servers.anycdn.https}${OBJECT}`);
    await writeFile(fieldsFile, JSON.stringify(fields));
    o.log(`anycdn's HTTP/2 hit fields (${Object.keys(fields).length} and Date): ${Object.keys(fields).join(', ')}`);
    await start('nodeH2EdgeFields', () => startTlsReference(join(o.dir, 'ref-h2-fields'), { ...o, pair, protocol: 'h2', fields: fieldsFile }));
  }

  const h1 = new Map<System, number[]>();
  const h2 = new Map<System, number[]>();
  /** Server CPU per HTTP/2 request (µs, all of its processes): less moved than req/s by what else runs. */
  const h2Cpu = new Map<System, number[]>();
  const handshakes = new Map<string, number[]>();
  for (let rep = 1; rep <= o.reps; rep++) {
    for (const name of ['nodeHttps', 'anycdn', 'anycdnNoFront', 'nginx', 'varnishHitch'] as System[]) {
      const s = servers[name];
      if (s === undefined) continue;
      const rps = await wrkTls(`${s.https}${OBJECT}`, o.seconds);
      h1.set(name, [...(h1.get(name) ?? []), rps]);
      o.log(`tls rep ${rep} http/1.1 ${name.padEnd(14)} ${fixed(rps / 1000, 1)}k req/s; load ${os.loadavg()[0]!.toFixed(2)}`);
    }
    for (const name of ['nodeH2', 'anycdn', 'nodeH2Compat', 'nodeH2EdgeFields', 'nginx'] as System[]) {
      const s = servers[name];
      if (s === undefined) continue;
      const meter = cpuMeter({ server: [s.pid] });
      const rps = await h2load(`${s.https}${OBJECT}`, o.seconds);
      const used = meter.stop();
      const cpuUs = (used['server']! / rps) * 1e6;
      h2.set(name, [...(h2.get(name) ?? []), rps]);
      h2Cpu.set(name, [...(h2Cpu.get(name) ?? []), cpuUs]);
      o.log(`tls rep ${rep} h2       ${name.padEnd(14)} ${fixed(rps / 1000, 1)}k req/s, server ${fixed(used['server']!, 2)} cores (${fixed(cpuUs, 1)} µs/req), others ${fixed(used['others']!, 2)}; load ${os.loadavg()[0]!.toFixed(2)}`);
    }
    for (const name of ['anycdn', 'nginx'] as System[]) {
      const s = servers[name];
      if (s === undefined) continue;
      for (const mode of ['new', 'reuse'] as const) {
        const perSecond = await handshakeRate(s.https, mode, o.seconds);
        handshakes.set(`${name} ${mode}`, [...(handshakes.get(`${name} ${mode}`) ?? []), perSecond]);
        o.log(`tls rep ${rep} handshakes ${mode.padEnd(5)} ${name.padEnd(8)} ${fixed(perSecond, 0)}/s`);
      }
    }
  }

  const m = (runs: Map<System, number[]>, name: System): number => median(runs.get(name) ?? []);
  const k = (v: number): string => (Number.isNaN(v) ? '-' : `${fixed(v / 1000, 1)}k`);
  const perRound = (a: System, b: System): string => {
    const [x, y] = [h2.get(a) ?? [], h2.get(b) ?? []];
    return x.length === 0 || y.length === 0 ? '-' : x.map((v, i) => fixed(v / y[i]!, 2)).join(', ');
  };
  const ratio = (a: number, b: number, target?: number): string => (Number.isNaN(a) || Number.isNaN(b) ? '-' : `${fixed(a / b, 2)}x${target === undefined ? '' : ` (target ≥ ${target}; ${a / b >= target ? 'met' : 'missed'})`}`);
  const lines = [
    `#### TLS and HTTP/2: 1 KiB hits over TLS 1.3, one ECDSA P-256 certificate, two processes each, ${o.reps} round(s) of ${o.seconds} s`,
    '',
    '| system | HTTP/1.1 (`wrk -t2 -c64`) | HTTP/2 (`h2load -t2 -c16 -m8`) | server CPU per HTTP/2 request |',
    '| --- | --- | --- | --- |',
    ...(Object.keys(LABEL) as System[]).filter((n) => servers[n] !== undefined).map((n) => `| ${LABEL[n]} | ${k(m(h1, n))} | ${k(m(h2, n))} | ${h2Cpu.has(n) ? `${fixed(median(h2Cpu.get(n)!), 1)} µs` : '-'} |`),
    '',
    `- HTTP/1.1: anycdn / nginx ${ratio(m(h1, 'anycdn'), m(h1, 'nginx'), 0.9)}; anycdn / bare Node https ${ratio(m(h1, 'anycdn'), m(h1, 'nodeHttps'), 1.0)}; anycdn / Varnish behind hitch ${ratio(m(h1, 'anycdn'), m(h1, 'varnishHitch'), 1.5)}; bare Node https / nginx ${ratio(m(h1, 'nodeHttps'), m(h1, 'nginx'))}`,
    `- HTTP/2: anycdn / bare Node http2 through its request API ${ratio(m(h2, 'anycdn'), m(h2, 'nodeH2Compat'), 1.0)} (per round: ${perRound('anycdn', 'nodeH2Compat')}); anycdn / nginx ${ratio(m(h2, 'anycdn'), m(h2, 'nginx'), 0.8)}; bare Node http2 (request API) / nginx ${ratio(m(h2, 'nodeH2Compat'), m(h2, 'nginx'))}`,
    `- HTTP/2 against the core stream API (five fields and Date): anycdn / bare Node http2 ${ratio(m(h2, 'anycdn'), m(h2, 'nodeH2'))} (per round: ${perRound('anycdn', 'nodeH2')}); bare Node http2 (core API) / nginx ${ratio(m(h2, 'nodeH2'), m(h2, 'nginx'))}`,
    `- HTTP/2 server CPU per request (µs, median), anycdn / bare Node http2: ${ratio(median(h2Cpu.get('anycdn') ?? []), median(h2Cpu.get('nodeH2') ?? []))}; anycdn / bare Node http2 sending the edge's fields: ${ratio(median(h2Cpu.get('anycdn') ?? []), median(h2Cpu.get('nodeH2EdgeFields') ?? []))}; with the edge's fields / without: ${ratio(median(h2Cpu.get('nodeH2EdgeFields') ?? []), median(h2Cpu.get('nodeH2') ?? []))} (lower is cheaper)`,
    `- HTTP/2, the fields apart: anycdn / bare Node http2 sending the edge's fields ${ratio(m(h2, 'anycdn'), m(h2, 'nodeH2EdgeFields'))} (per round: ${perRound('anycdn', 'nodeH2EdgeFields')}; the edge's own work); bare Node http2 with the edge's fields / without ${ratio(m(h2, 'nodeH2EdgeFields'), m(h2, 'nodeH2'))} (per round: ${perRound('nodeH2EdgeFields', 'nodeH2')}; what the fields cost)`,
    `- the quick front over TLS/HTTP/1.1: with / without ${ratio(m(h1, 'anycdn'), m(h1, 'anycdnNoFront'))}`,
    `- new TLS connections per second (\`openssl s_time\`, two clients at once, each connection one GET): full handshakes anycdn ${fixed(median(handshakes.get('anycdn new') ?? []), 0)}, nginx ${fixed(median(handshakes.get('nginx new') ?? []), 0)} (${ratio(median(handshakes.get('anycdn new') ?? []), median(handshakes.get('nginx new') ?? []))}); resumed anycdn ${fixed(median(handshakes.get('anycdn reuse') ?? []), 0)}, nginx ${fixed(median(handshakes.get('nginx reuse') ?? []), 0)} (${ratio(median(handshakes.get('anycdn reuse') ?? []), median(handshakes.get('nginx reuse') ?? []))})`,
    '',
  ];
  for (const s of Object.values(servers)) {
    await s.stop();
    o.started.splice(o.started.indexOf(s), 1);
  }
  return lines;
}

// ---------------------------------------------------------------- servers

async function startTlsEdge(dir: string, o: { origin: string; env: NodeJS.ProcessEnv; pair: { cert: string; key: string }; quickFront: boolean }): Promise<ServerProcess & { https: string }> {
  await mkdir(dir, { recursive: true });
  const [port, tlsPort] = [await freePort(), await freePort()];
  const config = {
    listen: `127.0.0.1:${port}`,
    upstream: o.origin,
    pop: 'bench',
    node: 'edge-tls',
    cacheDir: join(dir, 'cache'),
    logLevel: 'info',
    accessLog: false,
    drain: 0,
    workers: 2,
    tls: { listen: `127.0.0.1:${tlsPort}`, certificates: [o.pair], minVersion: 'TLSv1.3', quickFront: o.quickFront },
  };
  const configFile = join(dir, 'edge.json');
  await writeFile(configFile, JSON.stringify(config, null, 2));
  const child = spawnTo(process.execPath, [CLI, 'edge', '--config', configFile], join(dir, 'edge.log'), o.env);
  await waitFor(`https://127.0.0.1:${tlsPort}/_cdn/healthz`, child);
  return { label: LABEL.anycdn, pid: child.pid!, url: `http://127.0.0.1:${port}`, https: `https://127.0.0.1:${tlsPort}`, logs: [join(dir, 'edge.log')], stop: stopper(child) };
}

async function startTlsNginx(dir: string, o: { origin: string; pair: { cert: string; key: string } }): Promise<ServerProcess & { https: string }> {
  for (const sub of ['tmp', 'cache']) await mkdir(join(dir, sub), { recursive: true });
  const asRoot = process.getuid?.() === 0;
  if (asRoot) for (const path of [dir, join(dir, 'tmp'), join(dir, 'cache')]) chownSync(path, 65534, 65534);
  const port = await freePort();
  const origin = new URL(o.origin);
  const conf = `# generated by test/bench/edge-tls.ts
${asRoot ? 'user nobody nogroup;' : ''}
worker_processes 2;
daemon off;
master_process on;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_timeout 65s;
  keepalive_requests 10000000;
  http2_max_requests 10000000;
  client_body_temp_path ${dir}/tmp/client_body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  proxy_cache_path ${dir}/cache levels=1:2 keys_zone=edge:10m max_size=1g inactive=1h use_temp_path=off;
  ssl_protocols TLSv1.3;
  ssl_session_cache shared:SSL:10m;
  upstream origin { server ${origin.hostname}:${origin.port}; keepalive 32; }
  server {
    listen 127.0.0.1:${port} ssl http2;
    ssl_certificate ${o.pair.cert};
    ssl_certificate_key ${o.pair.key};
    location / {
      proxy_pass http://origin;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_cache edge;
      proxy_cache_valid 200 1h;
      proxy_cache_lock on;
    }
  }
}
`;
  const file = join(dir, 'nginx.conf');
  await writeFile(file, conf);
  const child = spawnTo('nginx', ['-p', dir, '-c', file, '-e', join(dir, 'error.log')], join(dir, 'stderr.log'));
  await waitFor(`https://127.0.0.1:${port}/_cdn/healthz`, child);
  return { label: LABEL.nginx, pid: child.pid!, url: '', https: `https://127.0.0.1:${port}`, logs: [join(dir, 'error.log')], stop: stopper(child) };
}

async function startTlsReference(dir: string, o: { objectsDir: string; env: NodeJS.ProcessEnv; pair: { cert: string; key: string }; protocol: 'https' | 'h2' | 'h2-compat'; fields?: string }): Promise<ServerProcess & { https: string }> {
  await mkdir(dir, { recursive: true });
  const script = join(REPO_ROOT, 'dist/test/bench/hit-reference.js');
  const fields = o.fields === undefined ? [] : ['--fields', o.fields];
  const child = spawn(process.execPath, [script, '--dir', o.objectsDir, '--prefix', 'bench', '--workers', '2', '--tls-cert', o.pair.cert, '--tls-key', o.pair.key, '--protocol', o.protocol, ...fields], { env: o.env, stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  const first = await new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`reference exited (${code})`)));
  });
  lines.close();
  child.stdout!.resume();
  const { url } = JSON.parse(first) as { url: string };
  return { label: LABEL[o.protocol === 'h2' ? (o.fields === undefined ? 'nodeH2' : 'nodeH2EdgeFields') : o.protocol === 'h2-compat' ? 'nodeH2Compat' : 'nodeHttps'], pid: child.pid!, url, https: url, logs: [], stop: stopper(child) };
}

async function startVarnishHitch(dir: string, o: { origin: string; pair: { cert: string; key: string } }): Promise<ServerProcess & { https: string }> {
  await mkdir(dir, { recursive: true });
  const [httpPort, proxyPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  const origin = new URL(o.origin);
  const vcl = join(dir, 'bench.vcl');
  await writeFile(vcl, `vcl 4.1;\nbackend origin { .host = "${origin.hostname}"; .port = "${origin.port}"; }\nsub vcl_backend_response { set beresp.ttl = 1h; }\n`);
  const varnish = spawnTo('varnishd', ['-F', '-a', `127.0.0.1:${httpPort}`, '-a', `127.0.0.1:${proxyPort},PROXY`, '-T', '127.0.0.1:0', '-s', 'malloc,256m', '-n', join(dir, 'work'), '-f', vcl], join(dir, 'varnishd.log'));
  await waitFor(`http://127.0.0.1:${httpPort}/_cdn/healthz`, varnish, 60_000);
  const pem = join(dir, 'hitch.pem');
  await writeFile(pem, Buffer.concat([await readFile(o.pair.key), await readFile(o.pair.cert)]));
  const hitch = spawnTo('hitch', [`--frontend=[127.0.0.1]:${tlsPort}`, `--backend=[127.0.0.1]:${proxyPort}`, '--write-proxy-v2', '--workers=2', '--tls-protos=TLSv1.3', '--alpn-protos=http/1.1', '--daemon=off', ...(process.getuid?.() === 0 ? ['--user=nobody'] : []), pem], join(dir, 'hitch.log'));
  await waitFor(`https://127.0.0.1:${tlsPort}/_cdn/healthz`, hitch);
  const stopVarnish = stopper(varnish);
  const stopHitch = stopper(hitch);
  return {
    label: LABEL.varnishHitch,
    pid: hitch.pid!,
    url: `http://127.0.0.1:${httpPort}`,
    https: `https://127.0.0.1:${tlsPort}`,
    logs: [join(dir, 'hitch.log'), join(dir, 'varnishd.log')],
    async stop() {
      await stopHitch();
      await stopVarnish();
    },
  };
}

function spawnTo(command: string, args: string[], logFile: string, env?: NodeJS.ProcessEnv): ChildProcess {
  const fd = openSync(logFile, 'a');
  const child = spawn(command, args, { env: env ?? process.env, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return child;
}

/** Polls `url` with curl (any answer counts) until it answers; rejects if the process exits or 30 s pass. */
async function waitFor(url: string, child: ChildProcess, timeoutMs = 30_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited (${child.exitCode})`);
    try {
      await run('curl', ['-sk', '-o', '/dev/null', '--max-time', '2', url]);
      return;
    } catch {
      if (performance.now() > deadline) throw new Error(`${url}: no answer in ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

function stopper(child: ChildProcess): () => Promise<void> {
  return async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(timer);
  };
}

// ---------------------------------------------------------------- load

/** The fields of an HTTP/2 answer to GET `url` (the test certificate is not checked): no `:status`, no Date (Node adds its own). */
async function h2Fields(url: string): Promise<Record<string, string>> {
  const session = connect(new URL(url).origin, { rejectUnauthorized: false });
  try {
    return await new Promise((resolve, reject) => {
      session.once('error', reject);
      const req = session.request({ ':path': new URL(url).pathname });
      req.once('error', reject);
      req.once('response', (headers) => {
        const fields: Record<string, string> = {};
        for (const [name, value] of Object.entries(headers)) if (!name.startsWith(':') && name !== 'date' && typeof value === 'string') fields[name] = value;
        req.resume();
        req.once('end', () => resolve(fields));
      });
      req.end();
    });
  } finally {
    session.close();
  }
}

async function wrkTls(url: string, seconds: number): Promise<number> {
  const { stdout } = await run('wrk', ['-t2', '-c64', `-d${seconds}s`, url], { maxBuffer: 1 << 20 });
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(stdout);
  if (/Non-2xx/.test(stdout) || rps === null) throw new Error(`wrk ${url}: ${stdout}`);
  return Number(rps[1]);
}

async function h2load(url: string, seconds: number): Promise<number> {
  const { stdout } = await run('h2load', ['-t2', '-c16', '-m8', '-D', String(seconds), '--warm-up-time=1', url], { maxBuffer: 1 << 20 });
  const rps = /finished in [\d.]+\w*, ([\d.]+) req\/s/.exec(stdout);
  const status = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(stdout);
  if (rps === null || status === null || Number(status[3]) + Number(status[4]) > 0) throw new Error(`h2load ${url}: ${stdout}`);
  return Number(rps[1]);
}

/** TLS connections per second with two `openssl s_time` clients at once; `new`: full handshakes, `reuse`: resumed. */
async function handshakeRate(base: string, mode: 'new' | 'reuse', seconds: number): Promise<number> {
  const host = new URL(base).host;
  const one = async (): Promise<number> => {
    const { stdout } = await run('openssl', ['s_time', '-connect', host, `-${mode}`, '-time', String(seconds), '-www', OBJECT], { maxBuffer: 1 << 20 });
    const m = /(\d+) connections in ([\d.]+)s/.exec(stdout);
    if (m === null) throw new Error(`s_time ${base}: ${stdout}`);
    return Number(m[1]) / Number(m[2]);
  };
  const rates = await Promise.all([one(), one()]);
  return rates[0]! + rates[1]!;
}
