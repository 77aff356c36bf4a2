/**
 * Disk hits (test/bench/disk.ts, section 2): one 50 KiB object that anycdn keeps out of memory,
 * `wrk -t2 -c64` against each system. A CDN serves warm: each system first gets `warmup` seconds
 * of the same load (a fresh Node process runs unoptimised code), reported apart so the
 * cold-process number stays visible; then `reps` measured rounds, the systems in turn, with req/s,
 * p99 and the server's CPU time per request (every process of it), the steadier measure on a
 * shared machine. With `objects` > 0, each request is for one of that many 50 KiB objects, chosen at
 * random (wrk's Lua), all pulled into every system and read once before the measured runs: what a
 * disk hit costs when the per-object memos of a process do not hold the whole set.
 */
import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixed, httpGetter, median } from './bench-lib.js';
import { objectBody } from './counting-origin.js';
import { cpuMeter, type ServerProcess } from './edge-peers.js';

export interface HitOptions {
  seconds: number;
  warmup: number;
  reps: number;
  /** The origin's GET counter: hits must not reach it. */
  served: () => Promise<number>;
  /** Objects read at random (`--hit-objects`); 0: one object, always the same. */
  objects?: number;
  /**
   * The request head wrk sends (`--hit-head`): `plain`, its own (the request line and Host), or
   * `browser`, the 13 fields a browser sends for an image (BROWSER_FIELDS), which is what an edge
   * reads in production.
   */
  head?: 'plain' | 'browser';
}

/** What Chrome sends for an <img> besides Host, as wrk.headers lines: 12 fields, ~700 bytes of head with the request line. */
const BROWSER_FIELDS: [string, string][] = [
  ['Connection', 'keep-alive'],
  ['sec-ch-ua', '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'],
  ['sec-ch-ua-mobile', '?0'],
  ['User-Agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36'],
  ['sec-ch-ua-platform', '"Linux"'],
  ['Accept', 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8'],
  ['Sec-Fetch-Site', 'same-site'],
  ['Sec-Fetch-Mode', 'no-cors'],
  ['Sec-Fetch-Dest', 'image'],
  ['Referer', 'https://www.example.com/articles/2026/12/some-article-about-cats'],
  ['Accept-Encoding', 'gzip, deflate, br, zstd'],
  ['Accept-Language', 'en-GB,en;q=0.9,de;q=0.8'],
];

interface HitRun {
  rps: number;
  p99Ms: number;
  /** CPU time of every process of the server per request, in µs. */
  cpuUs: number;
  /** Cores wrk used. */
  wrk: number;
  /** Cores used meanwhile by processes outside this benchmark (wrk not among them). */
  others: number;
}

/** One wrk run against `s`, with the server's CPU time per request; wrk's CPU is counted apart from other processes'. */
async function hitRun(s: ServerProcess, url: string, seconds: number, script?: string): Promise<HitRun> {
  const child = spawn('wrk', ['-t2', '-c64', `-d${seconds}s`, '--latency', ...(script === undefined ? [url] : ['-s', script, new URL(url).origin])]);
  const meter = cpuMeter({ server: [s.pid], wrk: [child.pid!] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  // Read the counters while wrk still exists (/proc forgets an exited process's time): every
  // 250 ms, keeping the last reading (a single timer near the end fires late on a busy machine).
  let used = meter.stop();
  const reading = setInterval(() => (used = meter.stop()), 250);
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  clearInterval(reading);
  if (code !== 0) throw new Error(`wrk exited ${code}:\n${out}`);
  if (/Non-2xx/.test(out)) throw new Error(`wrk saw errors:\n${out}`);
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const p99 = /^\s+99%\s+([\d.]+)(us|ms|s)\s*$/m.exec(out);
  const unit = { us: 0.001, ms: 1, s: 1000 }[(p99?.[2] ?? 'ms') as 'us' | 'ms' | 's'];
  return { rps, p99Ms: Number(p99?.[1]) * unit, cpuUs: (used['server']! / rps) * 1e6, wrk: used['wrk']!, others: used['others']! };
}

/**
 * Starts each of `names` (the first is the reference the ratios are against), checks the object's
 * bytes, warms every system up, measures the rounds, stops them; returns the report's lines.
 */
export async function diskHits<Name extends string>(names: Name[], start: (name: Name) => Promise<ServerProcess>, stop: (s: ServerProcess) => Promise<void>, o: HitOptions): Promise<string[]> {
  const path = `/h/1-${50 * 1024}.bin`;
  const objects = o.objects ?? 0;
  const randomPath = (i: number) => `/hr/${i}-${50 * 1024}.bin`;
  const browser = o.head === 'browser';
  const script = objects > 0 || browser ? join(tmpdir(), `anycdn-bench-hits-${process.pid}.lua`) : undefined;
  if (script !== undefined) {
    const fields = browser ? BROWSER_FIELDS.map(([name, value]) => `wrk.headers[${JSON.stringify(name)}] = ${JSON.stringify(value)}\n`).join('') : '';
    const requests = objects > 0 ? `math.randomseed(os.time())\nrequest = function()\n  return wrk.format("GET", "/hr/" .. math.random(0, ${objects - 1}) .. "-${50 * 1024}.bin")\nend\n` : `wrk.path = "${path}"\n`;
    writeFileSync(script, fields + requests);
  }
  const systems = new Map<Name, ServerProcess>();
  for (const name of names) {
    const s = await start(name);
    const getter = httpGetter(s.url, 1);
    for (let i = 0; i < 3; i++) if (!(await getter.get(path)).equals(objectBody(path)!)) throw new Error(`${name}: wrong body`);
    await getter.close();
    if (objects > 0) await pullAll(s.url, objects, randomPath);
    systems.set(name, s);
  }
  const before = await o.served();
  const warm = new Map<Name, HitRun>();
  if (o.warmup > 0) {
    for (const [name, s] of systems) {
      const r = await hitRun(s, `${s.url}${path}`, o.warmup, script);
      warm.set(name, r);
      console.log(`  warm-up hits 50 KiB ${name}: ${fixed(r.rps, 0)} req/s, p99 ${fixed(r.p99Ms, 2)} ms, ${fixed(r.cpuUs, 1)} µs CPU/req`);
    }
  }
  const runs = new Map<Name, HitRun[]>();
  for (let rep = 0; rep < o.reps; rep++) {
    for (const [name, s] of systems) {
      const r = await hitRun(s, `${s.url}${path}`, o.seconds, script);
      runs.set(name, [...(runs.get(name) ?? []), r]);
      console.log(`  hits 50 KiB ${name}: ${fixed(r.rps, 0)} req/s, p99 ${fixed(r.p99Ms, 2)} ms, ${fixed(r.cpuUs, 1)} µs CPU/req, wrk ${fixed(r.wrk, 2)} cores, others ${fixed(r.others, 2)} cores`);
    }
  }
  const originDuring = (await o.served()) - before;
  if (script !== undefined) rmSync(script, { force: true });
  for (const s of systems.values()) await stop(s);
  const lines: string[] = [];
  const say = (line: string) => lines.push(line);
  say('');
  say(`#### Disk hits: ${objects > 0 ? `${objects} objects of 50 KiB read at random` : 'one 50 KiB object'} kept out of memory (anycdn \`memory.maxEntrySize: 1KiB\`), \`wrk -t2 -c64\`${browser ? ' with a browser\'s 13-field request head' : ''}, ${o.warmup} s warm-up, then ${o.reps} rounds of ${o.seconds} s`);
  say('');
  say('| system | req/s (median) | runs | p99 ms | server CPU µs/req (median; each run) | warm-up req/s, p99 ms | wrk (cores) | others (cores) |');
  say('| --- | ---: | --- | ---: | ---: | --- | --- | --- |');
  const nginx = runs.get(names[0]!)!;
  const nginxRps = median(nginx.map((r) => r.rps));
  const nginxCpu = median(nginx.map((r) => r.cpuUs));
  for (const [name, rs] of runs) {
    const rps = median(rs.map((r) => r.rps));
    const cpu = median(rs.map((r) => r.cpuUs));
    const w = warm.get(name);
    const vs = (text: string, ratio: number) => (name === names[0] ? text : `${text} (${fixed(ratio, 2)}x nginx)`);
    say(
      `| ${name} | ${vs(fixed(rps, 0), rps / nginxRps)} | ${rs.map((r) => fixed(r.rps, 0)).join(', ')} | ${fixed(median(rs.map((r) => r.p99Ms)), 2)} | ${vs(fixed(cpu, 1), nginxCpu / cpu)}; ${rs.map((r) => fixed(r.cpuUs, 1)).join(', ')} | ${w === undefined ? '-' : `${fixed(w.rps, 0)}, ${fixed(w.p99Ms, 2)}`} | ${rs.map((r) => fixed(r.wrk, 2)).join(', ')} | ${rs.map((r) => fixed(r.others, 2)).join(', ')} |`,
    );
  }
  say(`CPU ratio: nginx's µs per request over the system's (above 1: cheaper than nginx). Origin GETs during the hit runs: ${originDuring}`);
  return lines;
}

/** Pulls `n` objects into a system (misses), then reads each once more (hits; every 50th body compared). */
async function pullAll(url: string, n: number, pathOf: (i: number) => string): Promise<void> {
  const getter = httpGetter(url, 32);
  try {
    for (let pass = 0; pass < 2; pass++) {
      let next = 0;
      await Promise.all(
        Array.from({ length: 32 }, async () => {
          while (next < n) {
            const i = next++;
            const body = await getter.get(pathOf(i));
            if (i % 50 === 0 && !body.equals(objectBody(pathOf(i))!)) throw new Error(`${url}${pathOf(i)}: body differs`);
          }
        }),
      );
    }
  } finally {
    await getter.close();
  }
}
