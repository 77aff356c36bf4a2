/**
 * The upstream client's connect + headers deadline, kept for every request without a streamed
 * body in one queue (edge/upstream.ts): each request still gets its own deadline, counted from
 * when it was made, whatever the requests before and after it do.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Upstream } from '../../../edge/upstream.js';

const CONNECT_MS = 50;
const HEADERS_MS = 1000;
/** What a request may wait for its response head, queueing and connecting included. */
const DEADLINE_MS = CONNECT_MS + HEADERS_MS;
/** The earliest a hanging request may fail: undici's own headers timeout counts from the request's write. */
const EARLIEST_MS = HEADERS_MS - 5;

let server: Server | undefined;
let upstream: Upstream | undefined;
const hanging: ServerResponse[] = [];

afterEach(async () => {
  await upstream?.destroy();
  for (const res of hanging.splice(0)) res.destroy();
  await new Promise((resolve) => (server === undefined ? resolve(undefined) : server.close(resolve)));
  server = undefined;
  upstream = undefined;
});

/** An origin answering `/fast…` at once, `/after-N…` after N ms, and never answering `/hang…`. */
async function origin(): Promise<string> {
  server = createServer((req, res) => {
    const url = req.url ?? '/';
    if (url.startsWith('/hang')) return void hanging.push(res);
    const after = /^\/after-(\d+)/.exec(url);
    const answer = () => res.writeHead(200, { 'content-length': '2' }).end('ok');
    if (after !== null) setTimeout(answer, Number(after[1]));
    else answer();
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function timed(path: string): Promise<{ ms: number; status?: number; code?: string }> {
  const started = performance.now();
  try {
    const res = await upstream!.request({ method: 'GET', path, headers: {} });
    for await (const _ of res.body) void _;
    return { ms: performance.now() - started, status: res.status };
  } catch (err) {
    return { ms: performance.now() - started, code: (err as { code?: string }).code };
  }
}

describe('upstream deadlines', () => {
  it('times out each hanging request at its own deadline, among requests that answer', async () => {
    upstream = new Upstream(await origin(), { connectMs: CONNECT_MS, headersMs: HEADERS_MS, bodyIdleMs: 5000 }, Date.now);
    const first = timed('/hang-1');
    await new Promise((r) => setTimeout(r, 300));
    // Made 300 ms later: due 300 ms after the first, not with it.
    const second = timed('/hang-2');
    const answered = await Promise.all(Array.from({ length: 8 }, (_, i) => timed(`/fast-${i}`)));
    expect(answered.map((a) => a.status)).toEqual(Array(8).fill(200));
    const slowButInTime = await timed(`/after-${DEADLINE_MS - 400}`);
    expect(slowButInTime.status).toBe(200);
    const [a, b] = await Promise.all([first, second]);
    expect(a.code).toBe('upstream_timeout');
    expect(b.code).toBe('upstream_timeout');
    for (const t of [a, b]) {
      expect(t.ms).toBeGreaterThanOrEqual(EARLIEST_MS);
      expect(t.ms).toBeLessThan(DEADLINE_MS + 1000);
    }
  });

  it('keeps deadlines right past a hanging request with more than a thousand answered behind it', async () => {
    upstream = new Upstream(await origin(), { connectMs: CONNECT_MS, headersMs: HEADERS_MS, bodyIdleMs: 5000 }, Date.now);
    const first = timed('/hang-1');
    let answered = 0;
    for (let batch = 0; batch < 30; batch++) {
      const results = await Promise.all(Array.from({ length: 40 }, (_, i) => timed(`/fast-${batch}-${i}`)));
      answered += results.filter((r) => r.status === 200).length;
    }
    expect(answered).toBe(1200);
    const second = timed('/hang-2');
    for (const t of [await first, await second]) {
      expect(t.code).toBe('upstream_timeout');
      expect(t.ms).toBeGreaterThanOrEqual(EARLIEST_MS);
    }
  });

  it('gives a request made after the queue went idle a full deadline again', async () => {
    upstream = new Upstream(await origin(), { connectMs: CONNECT_MS, headersMs: HEADERS_MS, bodyIdleMs: 5000 }, Date.now);
    expect((await timed('/fast')).status).toBe(200);
    await new Promise((r) => setTimeout(r, DEADLINE_MS + 50));
    // Answers 650 ms after it is made: inside its own deadline, whatever came before.
    expect((await timed(`/after-${DEADLINE_MS - 400}`)).status).toBe(200);
    const hung = await timed('/hang');
    expect(hung.code).toBe('upstream_timeout');
    expect(hung.ms).toBeGreaterThanOrEqual(EARLIEST_MS);
  });
});
