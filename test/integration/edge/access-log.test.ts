/**
 * The edge's access log as operators read it: a real edge in front of a real origin on loopback,
 * writing to a file. A miss carries upstream's status and time, a hit from the quick front, a 304
 * and a HEAD are logged with what was sent; combined lines read with a GoAccess-style regex; a
 * rotation (rename, then SIGUSR1) moves later lines to the new file and loses none, with one
 * process and with `workers: 2`; a pipe nobody reads costs lines (counted), never requests.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { metricValue, startTestEdge } from '../../support/edge.js';
import { startTestOrigin, type TestOrigin } from '../../support/origin.js';
import { cliBuilt, exited, startCli, stopAll } from '../../support/process.js';
import { RawClient } from '../../support/raw-client.js';

let origin: TestOrigin;
let dir: string;
const object = randomBytes(1024);

beforeAll(async () => {
  origin = await startTestOrigin();
  expect((await origin.put('obj.bin', object, { 'cache-control': 'public, max-age=3600' })).status).toBe(201);
  dir = await mkdtemp(join(tmpdir(), 'anycdn-access-log-'));
});
afterAll(async () => {
  await stopAll();
  await origin.stop();
  await rm(dir, { recursive: true, force: true });
});

type Line = Record<string, unknown>;

/** The lines of a JSON access log, once it has at least `count` of them (bounded wait). */
async function jsonLines(file: string, count: number, timeoutMs = 10_000): Promise<Line[]> {
  return (await textLines(file, count, timeoutMs)).map((l) => JSON.parse(l) as Line);
}

async function textLines(file: string, count: number, timeoutMs = 10_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = await readFile(file, 'latin1').catch(() => '');
    const lines = text.split('\n').filter((l) => l !== '');
    if (lines.length >= count || Date.now() > deadline) return lines;
    await new Promise((r) => setTimeout(r, 20));
  }
}

const port = (url: string): number => Number(new URL(url).port);

describe('edge access log, JSON lines to a file', () => {
  it('logs a miss with upstream status and time, then a quick-front hit, a 304 and a HEAD', async () => {
    const file = join(dir, 'json.log');
    const edge = await startTestEdge(origin.url, { accessLog: { path: file, flushInterval: '10ms' } });
    const before = Date.now();
    const miss = new RawClient(port(edge.url));
    const hits = new RawClient(port(edge.url));
    try {
      miss.write('GET /obj.bin HTTP/1.1\r\nHost: cdn.test\r\nUser-Agent: ua "quoted" \\ \r\nReferer: https://ref.example/page\r\n\r\n');
      const first = await miss.response();
      expect(first.fields['cache-status']).toContain('fwd=miss');
      await edge.server.pipeline.settled();
      // A fresh connection whose first request is a fresh hit in memory: the quick front answers it.
      hits.write('GET /obj.bin HTTP/1.1\r\nHost: cdn.test\r\n\r\n');
      const hit = await hits.response();
      expect(hit.fields['server-timing']).toBe('cdn-cache;desc=hit');
      hits.write(`GET /obj.bin HTTP/1.1\r\nHost: cdn.test\r\nIf-None-Match: ${hit.fields['etag']}\r\n\r\n`);
      expect((await hits.response()).status).toBe(304);
      hits.write('HEAD /obj.bin HTTP/1.1\r\nHost: cdn.test\r\nUser-Agent: probe/1\r\n\r\n');
      expect((await hits.response(true)).status).toBe(200);

      const lines = await jsonLines(file, 4);
      const after = Date.now();
      expect(lines.length).toBe(4);
      const [m, h, notModified, head] = lines as [Line, Line, Line, Line];
      expect(Object.keys(m)).toEqual(['time', 'pop', 'node', 'client', 'clientPort', 'method', 'host', 'target', 'protocol', 'status', 'bytes', 'durationMs', 'ttfbMs', 'outcome', 'upstreamStatus', 'upstreamMs', 'userAgent', 'referer']);
      expect(m).toMatchObject({ pop: 'test', node: 'edge-1', client: '127.0.0.1', clientPort: miss.socket.localPort, method: 'GET', host: 'cdn.test', target: '/obj.bin', protocol: 'HTTP/1.1', status: 200, bytes: 1024, outcome: 'miss', upstreamStatus: 200, userAgent: 'ua "quoted" \\', referer: 'https://ref.example/page' });
      const time = Date.parse(m['time'] as string);
      expect(time).toBeGreaterThanOrEqual(before - 5);
      expect(time).toBeLessThanOrEqual(after);
      // Upstream answered within the request, and the head went out before the last byte.
      expect(m['upstreamMs']).toBeGreaterThan(0);
      expect(m['upstreamMs']).toBeLessThanOrEqual(m['ttfbMs'] as number);
      expect(m['ttfbMs']).toBeLessThanOrEqual(m['durationMs'] as number);

      expect(Object.keys(h)).toEqual(['time', 'pop', 'node', 'client', 'clientPort', 'method', 'host', 'target', 'protocol', 'status', 'bytes', 'durationMs', 'ttfbMs', 'outcome']);
      expect(h).toMatchObject({ client: '127.0.0.1', clientPort: hits.socket.localPort, method: 'GET', host: 'cdn.test', target: '/obj.bin', protocol: 'HTTP/1.1', status: 200, bytes: 1024, outcome: 'hit' });
      expect(h['ttfbMs']).toBe(h['durationMs']);
      expect(notModified).toMatchObject({ clientPort: hits.socket.localPort, method: 'GET', status: 304, bytes: 0, outcome: 'hit' });
      expect(notModified['upstreamStatus']).toBeUndefined();
      expect(head).toMatchObject({ clientPort: hits.socket.localPort, method: 'HEAD', status: 200, bytes: 0, outcome: 'hit', userAgent: 'probe/1' });

      const metrics = (await request(`${edge.url}/_cdn/metrics`).then((r) => r.body.text())) as string;
      expect(metricValue(metrics, 'anycdn_edge_access_log_lines_total', {})).toBe(4);
      expect(metricValue(metrics, 'anycdn_edge_access_log_dropped_total', { reason: 'buffer-full' })).toBe(0);
      expect(metrics).toContain('anycdn_edge_access_log_dropped_total{reason="write-error"} 0');
    } finally {
      miss.socket.destroy();
      hits.socket.destroy();
      await edge.destroy();
    }
    // The metrics request was logged too, as the edge stopped: nothing accepted is lost.
    const all = await jsonLines(file, 5);
    expect(all.length).toBe(5);
    expect(all[4]).toMatchObject({ target: '/_cdn/metrics', status: 200, outcome: 'control' });
  });

  it('logs an HTTP/1.0 request and a request refused as bad, with what was sent', async () => {
    const file = join(dir, 'refused.log');
    const edge = await startTestEdge(origin.url, { accessLog: { path: file, flushInterval: '10ms' } });
    try {
      const old = new RawClient(port(edge.url));
      old.write('GET /obj.bin HTTP/1.0\r\nHost: cdn.test\r\n\r\n');
      expect((await old.response()).status).toBe(200);
      old.socket.destroy();
      const bad = new RawClient(port(edge.url));
      bad.write('GET /obj.bin?w=abc HTTP/1.1\r\nHost: cdn.test\r\n\r\n');
      expect((await bad.response()).status).toBe(400);
      bad.socket.destroy();
      // Lines are written as answers end: a streamed miss may end after a later quick refusal.
      const lines = await jsonLines(file, 2);
      expect(lines.length).toBe(2);
      const [old10] = lines.filter((l) => l['protocol'] === 'HTTP/1.0');
      const [refused] = lines.filter((l) => l['status'] === 400);
      expect(old10).toMatchObject({ target: '/obj.bin', status: 200, outcome: 'miss', upstreamStatus: 200 });
      expect(refused).toMatchObject({ target: '/obj.bin?w=abc', protocol: 'HTTP/1.1', status: 400, outcome: 'error' });
      expect(refused!['upstreamStatus']).toBeUndefined();
    } finally {
      await edge.destroy();
    }
  });
});

/** GoAccess's COMBINED (`%h %^[%d:%t %^] "%r" %s %b "%R" "%u"`) as a regex, then the outcome appended. */
const COMBINED = /^(\S+) \S+ \S+ \[(\d{2}\/\w{3}\/\d{4}):(\d{2}:\d{2}:\d{2}) ([+-]\d{4})\] "([^"]*)" (\d{3}) (\d+|-) "([^"]*)" "([^"]*)" (\S+)$/;

describe('edge access log, combined format', () => {
  it('writes lines a GoAccess COMBINED parser reads, quotes in fields escaped as \\x22', async () => {
    const file = join(dir, 'combined.log');
    const edge = await startTestEdge(origin.url, { accessLog: { path: file, format: 'combined', flushInterval: '10ms' } });
    try {
      const client = new RawClient(port(edge.url));
      client.write('GET /obj.bin HTTP/1.1\r\nHost: cdn.test\r\nUser-Agent: Mozilla/5.0 "evil" \\x\r\nReferer: https://ref.example/?q="x"\r\n\r\n');
      await client.response();
      await edge.server.pipeline.settled();
      client.write('GET /obj.bin HTTP/1.1\r\nHost: cdn.test\r\n\r\n');
      await client.response();
      client.socket.destroy();
      const lines = await textLines(file, 2);
      expect(lines.length).toBe(2);
      const parsed = lines.map((l) => COMBINED.exec(l));
      expect(parsed[0]).not.toBeNull();
      expect(parsed[1]).not.toBeNull();
      const [, address, date, , zone, requestLine, status, bytes, referer, agent, outcome] = parsed[0]!;
      expect([address, zone, requestLine, status, bytes, referer, agent, outcome]).toEqual(['127.0.0.1', '+0000', 'GET /obj.bin HTTP/1.1', '200', '1024', 'https://ref.example/?q=\\x22x\\x22', 'Mozilla/5.0 \\x22evil\\x22 \\x5Cx', 'miss']);
      expect(date).toBe(new Date().toUTCString().replace(/^\w+, (\d{2}) (\w{3}) (\d{4}).*$/, '$1/$2/$3'));
      expect(parsed[1]!.slice(5)).toEqual(['GET /obj.bin HTTP/1.1', '200', '1024', '-', '-', 'hit']);
    } finally {
      await edge.destroy();
    }
  });
});

describe('edge access log to a pipe nobody reads', () => {
  it('drops and counts lines once its bound is reached, answers every request, and stops without waiting forever', async () => {
    const fifo = join(dir, 'stalled.fifo');
    execFileSync('mkfifo', [fifo]);
    // A reader that never reads: the pipe fills (64 KiB), then the buffer (64 KiB), then lines are dropped.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const edge = await startTestEdge(origin.url, { accessLog: { path: fifo, maxBufferBytes: '64KiB', flushInterval: '10ms' } });
    const agent = 'x'.repeat(2000);
    const n = 300;
    try {
      const client = new RawClient(port(edge.url));
      let slowest = 0;
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        client.write(`GET /obj.bin HTTP/1.1\r\nHost: cdn.test\r\nUser-Agent: ${agent}-${i}\r\n\r\n`);
        expect((await client.response()).status).toBe(200);
        slowest = Math.max(slowest, performance.now() - t0);
        if (i === 0) await edge.server.pipeline.settled();
      }
      client.socket.destroy();
      // Generous for a loaded shared machine (the slowest of 300): a request that waited on the pipe would wait for ever.
      expect(slowest).toBeLessThan(5_000);
      const metrics = await request(`${edge.url}/_cdn/metrics`).then((r) => r.body.text());
      const dropped = metricValue(metrics, 'anycdn_edge_access_log_dropped_total', { reason: 'buffer-full' });
      const written = metricValue(metrics, 'anycdn_edge_access_log_lines_total', {});
      // ~2.1 KB a line: at most 64 KiB in the pipe and 64 KiB waiting, about 60 lines, are kept.
      expect(dropped).toBeGreaterThan(n - 70);
      expect(written).toBeLessThan(40);
      // What did reach the pipe is whole lines.
      const bytes = Buffer.alloc(256 * 1024);
      const got = readSync(reader, bytes, 0, bytes.length, null);
      const text = bytes.toString('latin1', 0, got);
      expect(text.endsWith('\n')).toBe(true);
      for (const line of text.split('\n').filter(Boolean)) expect((JSON.parse(line) as Line)['status']).toBe(200);
    } finally {
      const t0 = performance.now();
      await edge.destroy();
      expect(performance.now() - t0).toBeLessThan(5_000);
      closeSync(reader);
    }
  });
});

describe.skipIf(!cliBuilt)('edge access log rotation (SIGUSR1), through the CLI', () => {
  it.each([1, 2])('workers: %i — after a rename and SIGUSR1, later lines go to the new file and none is lost', async (workers) => {
    const file = join(dir, `rotated-${workers}.log`);
    const config = join(dir, `edge-${workers}.json`);
    await writeFile(config, JSON.stringify({ listen: '127.0.0.1:0', upstream: origin.url, pop: 'lab', node: `r${workers}`, cacheDir: join(dir, `cache-${workers}`), drain: 0, workers, accessLog: { path: file, flushInterval: '20ms' } }));
    const proc = startCli(['edge', '--config', config]);
    const url = String((await proc.waitForLog('edge listening', 30_000))['url']);
    // One connection per request, so both workers take some.
    const get = async (agent: string): Promise<void> => {
      const res = await request(`${url}/obj.bin`, { headers: { 'user-agent': agent, connection: 'close' } });
      expect(res.statusCode).toBe(200);
      expect(Buffer.from(await res.body.arrayBuffer()).equals(object)).toBe(true);
    };
    for (let i = 0; i < 30; i++) await get(`before-${i}`);
    // logrotate `create`: the file is renamed (lines still buffered follow it), then the process told.
    await rename(file, `${file}.1`);
    proc.child.kill('SIGUSR1');
    const reopened = (): number => proc.output().split('\n').filter((l) => l.includes('"msg":"access log reopened"')).length;
    for (let i = 0; i < 500 && reopened() < workers; i++) await new Promise((r) => setTimeout(r, 20));
    expect(reopened()).toBe(workers);
    for (let i = 0; i < 30; i++) await get(`after-${i}`);
    proc.child.kill('SIGTERM');
    expect(await exited(proc.child, 30_000)).toBe(0);

    const old = (await jsonLines(`${file}.1`, 30, 0)).filter((l) => l['target'] === '/obj.bin');
    const fresh = (await jsonLines(file, 30, 0)).filter((l) => l['target'] === '/obj.bin');
    expect(old.map((l) => l['userAgent']).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `before-${i}`).sort());
    expect(fresh.map((l) => l['userAgent']).sort()).toEqual(Array.from({ length: 30 }, (_, i) => `after-${i}`).sort());
    // The node is one cache: the first request fetched from upstream; every other one was a hit,
    // or (while that fetch was still storing) waited on it, with workers too: a worker's first
    // request for the object is what the shield did, a hit, and is logged as one.
    const all = [...old, ...fresh];
    expect(all.filter((l) => l['upstreamStatus'] !== undefined).map((l) => [l['userAgent'], l['outcome'], l['upstreamStatus']])).toEqual([['before-0', 'miss', 200]]);
    expect(all.filter((l) => l['userAgent'] !== 'before-0' && l['outcome'] !== 'hit' && l['outcome'] !== 'collapsed')).toEqual([]);
    expect(fresh.every((l) => l['outcome'] === 'hit')).toBe(true);
  });

  it('acts on a SIGUSR1 that comes while the edge starts once it is up (workers: 2)', async () => {
    const file = join(dir, 'early.log');
    const config = join(dir, 'edge-early.json');
    await writeFile(config, JSON.stringify({ listen: '127.0.0.1:0', upstream: origin.url, pop: 'lab', node: 'early', cacheDir: join(dir, 'cache-early'), drain: 0, workers: 2, accessLog: { path: file, flushInterval: '20ms' } }));
    const proc = startCli(['edge', '--config', config]);
    // The shield is up; the workers are still to be started, and the primary with them.
    await proc.waitForOutput('"msg":"shield listening"', 30_000);
    proc.child.kill('SIGUSR1');
    await proc.waitForOutput('"workers":2', 30_000); // the primary's own 'edge listening'
    const reopened = (): number => proc.output().split('\n').filter((l) => l.includes('"msg":"access log reopened"')).length;
    for (let i = 0; i < 500 && reopened() < 2; i++) await new Promise((r) => setTimeout(r, 20));
    expect(proc.output()).toContain('"msg":"SIGUSR1: reopening the access log"');
    expect(reopened()).toBe(2);
    const url = String(JSON.parse(proc.output().split('\n').find((l) => l.includes('"workers":2'))!)['url']);
    const res = await request(`${url}/obj.bin`, { headers: { 'user-agent': 'after-start' } });
    expect(res.statusCode).toBe(200);
    await res.body.arrayBuffer();
    proc.child.kill('SIGTERM');
    expect(await exited(proc.child, 30_000)).toBe(0);
    expect((await jsonLines(file, 1, 0)).map((l) => l['userAgent'])).toEqual(['after-start']);
  });
});
