/**
 * HTTP/2 limits and floods, with raw frames on a TLS connection to the edge's own listener: what a
 * browser never reaches but an attacker does ends the connection (GOAWAY), within a bounded number
 * of frames and time, and never takes the server down: concurrent streams past the limit, a header
 * list past its size, rapid reset, CONTINUATION without end, and PING and SETTINGS floods, both
 * from a client that reads every acknowledgement (which only anycdn's guard stops) and from one
 * that sends a burst without reading (which nghttp2's own bound stops).
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FLOOD_BUDGET, SESSION_LIMITS } from '../../../src/serve/h2.js';
import { testCa, type TestCa } from '../../support/certs.js';
import { metricValue, startTestEdge, type TestEdge } from '../../support/edge.js';
import { h2request, h2session } from '../../support/https-clients.js';
import { FLAG, FRAME, frame, headerBlock, RawH2, requestBlock } from '../../support/h2-frames.js';

const ENHANCE_YOUR_CALM = 11;
const PROTOCOL_ERROR = 1;
const INTERNAL_ERROR = 2;
let upstream: Server;
let ca: TestCa;
let caPem: Buffer;
let edge: TestEdge;
let port: number;

/** Upstream answers to /open.txt not ended yet: their first byte is sent, the rest waits for the test. */
const open = new Set<ServerResponse>();

beforeAll(async () => {
  upstream = createServer((req, res) => {
    if (req.url === '/open.txt') {
      res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', 'content-length': '2' }).write('o');
      open.add(res);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=600', 'content-length': '2' }).end('ok');
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  ca = await testCa();
  caPem = await readFile(ca.caFile);
  const pair = await ca.issue('local', ['localhost', 'IP:127.0.0.1']);
  edge = await startTestEdge(`http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, { tls: { listen: '127.0.0.1:0', certificates: [pair] } });
  port = edge.server.https!.port;
  // A fresh hit to ask for: answered at once, as an attacker would choose.
  const session = await h2session(edge.server.https!.url, { ca: caPem });
  await h2request(session, '/hit.txt');
  session.close();
  await edge.settled();
});

afterAll(async () => {
  for (const res of open) res.end('k');
  await edge.destroy();
  await new Promise((r) => upstream.close(r));
  await ca.remove();
});

/** The server still serves a new connection after the flood. */
async function stillServing(): Promise<void> {
  const session = await h2session(edge.server.https!.url, { ca: caPem });
  const res = await h2request(session, '/hit.txt');
  session.close();
  expect(res.status).toBe(200);
  expect(res.headers['cache-status']).toMatch(/^anycdn; hit/);
}

const hits = async (): Promise<number> => metricValue(await edge.server.metrics.registry.metrics(), 'anycdn_edge_requests_total', { method: 'GET', status: '200', outcome: 'hit' });

describe('limits', () => {
  it(`answers ${SESSION_LIMITS.maxConcurrentStreams} streams at once; one more ends the connection`, async () => {
    const raw = await RawH2.open(port, caPem);
    const limit = SESSION_LIMITS.maxConcurrentStreams;
    // Streams whose answers have begun (HEADERS and a first byte, one upstream answer shared by
    // all) and not ended: all of them open, however long the next HEADERS takes to arrive. (An
    // answer that ends closes its stream even when the client's side stays open: the server
    // resets it with NO_ERROR, RFC 9113 §8.1, and a later stream would then fit.)
    for (let i = 0; i < limit; i++) raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * i, requestBlock('/open.txt')));
    await raw.until(() => raw.frames.filter((f) => f.type === FRAME.HEADERS).length === limit);
    raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS, 1 + 2 * limit, requestBlock('/open.txt')));
    await raw.until(() => raw.closed, 5_000);
    expect(raw.frames.filter((f) => f.type === FRAME.HEADERS).length).toBe(limit);
    // nghttp2 treats it as a connection error (PROTOCOL_ERROR, RFC 9113 §5.1.2); Node then ends the
    // session, on Node 20 and 26 without a GOAWAY the client gets to read: the connection closes.
    expect(raw.closed).toBe(true);
    expect(raw.goaway()?.code ?? PROTOCOL_ERROR).toBe(PROTOCOL_ERROR);
    await stillServing();
  });

  it(`refuses a header list over ${SESSION_LIMITS.maxHeaderListSize} bytes with RST_STREAM, and the connection goes on`, async () => {
    const raw = await RawH2.open(port, caPem);
    try {
      const block = requestBlock('/hit.txt', [['x-big', 'a'.repeat(SESSION_LIMITS.maxHeaderListSize + 1000)]]);
      raw.send(frame(FRAME.HEADERS, FLAG.END_STREAM, 1, block.subarray(0, 16_000)));
      raw.send(frame(FRAME.CONTINUATION, 0, 1, block.subarray(16_000, 32_000)));
      raw.send(frame(FRAME.CONTINUATION, FLAG.END_HEADERS, 1, block.subarray(32_000)));
      await raw.until(() => raw.resets().length > 0);
      expect(raw.resets()).toEqual([{ stream: 1, code: ENHANCE_YOUR_CALM }]);
      raw.send(frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 3, requestBlock('/hit.txt')));
      await raw.until(() => raw.frames.some((f) => f.type === FRAME.HEADERS && f.stream === 3));
      expect(raw.closed).toBe(false);
      expect(raw.goaway()).toBeUndefined();
    } finally {
      raw.close();
    }
  });
});

describe('floods', () => {
  it('rapid reset (HEADERS then RST_STREAM, again and again, CVE-2023-44487) ends in GOAWAY and a closed connection', async () => {
    const before = await hits();
    const raw = await RawH2.open(port, caPem);
    let pairs = 0;
    for (let i = 0; i < 20_000 && !raw.closed; i++) {
      raw.send(Buffer.concat([frame(FRAME.HEADERS, FLAG.END_HEADERS | FLAG.END_STREAM, 1 + 2 * i, requestBlock('/hit.txt')), frame(FRAME.RST_STREAM, 0, 1 + 2 * i, Buffer.from([0, 0, 0, 8]))]));
      pairs++;
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    await raw.until(() => raw.closed, 5_000);
    expect(raw.closed).toBe(true);
    // Whichever bound acts first: anycdn's guard (ENHANCE_YOUR_CALM), or nghttp2's own (Node 26's
    // reads a burst before JavaScript hears of the resets: INTERNAL_ERROR); the guard then closes
    // the connection, which nghttp2 alone leaves open.
    expect([INTERNAL_ERROR, ENHANCE_YOUR_CALM]).toContain(raw.goaway()?.code);
    // Cut off near the budget: the server stopped doing work for this client.
    expect(pairs).toBeLessThan(5_000);
    expect((await hits()) - before).toBeLessThan(FLOOD_BUDGET.burst + 500);
    await stillServing();
  });

  it('CONTINUATION frames without end (CVE-2024-27316 and kin) end the connection with GOAWAY', async () => {
    const raw = await RawH2.open(port, caPem);
    raw.send(frame(FRAME.HEADERS, 0, 1, requestBlock('/hit.txt')));
    let sent = 0;
    for (let i = 0; i < 100_000 && !raw.closed; i++) {
      raw.send(frame(FRAME.CONTINUATION, 0, 1, headerBlock([[`x-c${i % 50}`, 'v']])));
      sent++;
      if (i % 50 === 49) await new Promise((r) => setImmediate(r));
    }
    await raw.until(() => raw.closed, 5_000);
    expect(raw.closed).toBe(true);
    expect(raw.goaway()).toBeDefined();
    expect(sent).toBeLessThan(20_000);
    await stillServing();
  });

  it.each([
    ['PING', () => frame(FRAME.PING, 0, 0, Buffer.alloc(8)), FRAME.PING],
    ['SETTINGS', () => frame(FRAME.SETTINGS, 0, 0), FRAME.SETTINGS],
  ])('a %s flood from a client that reads every acknowledgement ends in GOAWAY ENHANCE_YOUR_CALM', async (_name, make, type) => {
    const raw = await RawH2.open(port, caPem);
    const acks = (): number => raw.frames.filter((f) => f.type === type && (f.flags & FLAG.ACK) !== 0).length;
    let sent = 0;
    // Paced as acknowledged: nghttp2's bound on unsent acknowledgements never fills.
    while (!raw.closed && sent < 10 * FLOOD_BUDGET.burst) {
      const base = acks();
      for (let i = 0; i < 20; i++) raw.send(make());
      sent += 20;
      await raw.until(() => acks() >= base + 20, 5_000);
    }
    await raw.until(() => raw.closed, 5_000);
    expect(raw.closed).toBe(true);
    expect(raw.goaway()?.code).toBe(ENHANCE_YOUR_CALM);
    expect(sent).toBeLessThanOrEqual(FLOOD_BUDGET.burst + 40);
    await stillServing();
  });

  it.each([
    ['PING', () => frame(FRAME.PING, 0, 0, Buffer.alloc(8))],
    ['SETTINGS', () => frame(FRAME.SETTINGS, 0, 0)],
  ])('a %s burst that is never read is cut off at once', async (_name, make) => {
    const raw = await RawH2.open(port, caPem);
    const started = performance.now();
    raw.send(Buffer.concat(Array.from({ length: 5_000 }, make)));
    await raw.until(() => raw.closed, 5_000);
    expect(raw.closed).toBe(true);
    expect(raw.closedAt! - started).toBeLessThan(2_000);
    // Whatever GOAWAY got through says the server ended it.
    const goaway = raw.goaway();
    if (goaway !== undefined) expect([INTERNAL_ERROR, ENHANCE_YOUR_CALM]).toContain(goaway.code);
    await stillServing();
  });
});
