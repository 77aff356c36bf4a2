/**
 * The agent's probe against a real edge (healthy, then draining as on SIGTERM) and against
 * endpoints that fail in the ways a probe must bound: refused, silent, endless.
 */
import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Worker } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { probeHealth } from '../../../bgp/health-probe.js';
import { startTestEdge } from '../../support/edge.js';
import { hangingUpstream } from '../../support/upstreams.js';

const closers: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of closers) await c();
});

async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server: Server = createServer(handler!);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  closers.push(() => new Promise<void>((r) => server.close(() => r())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/_cdn/healthz`;
}

describe('probeHealth', () => {
  it('a real edge: ok, then draining once it drains (never asking its upstream)', async () => {
    const upstream = await hangingUpstream();
    closers.push(() => upstream.close());
    const edge = await startTestEdge(upstream.url);
    const url = `${edge.url}/_cdn/healthz`;
    expect(await probeHealth(url, 1000)).toEqual({ kind: 'ok' });
    const drained = edge.server.drain(400);
    expect(await probeHealth(url, 1000)).toEqual({ kind: 'draining' });
    await drained;
    await edge.destroy();
    expect(await probeHealth(url, 1000)).toEqual({ kind: 'fail', reason: 'ECONNREFUSED' });
    expect(upstream.requests()).toBe(0);
  });

  it('no answer within the timeout fails, in about the timeout', async () => {
    const silent = await hangingUpstream();
    closers.push(() => silent.close());
    const started = performance.now();
    expect(await probeHealth(`${silent.url}/_cdn/healthz`, 200)).toEqual({ kind: 'fail', reason: 'no answer within 200 ms' });
    const took = performance.now() - started;
    expect(took).toBeGreaterThanOrEqual(190);
    expect(took).toBeLessThan(1000);
  });

  it('a body that never ends fails at the timeout; a huge one is cut at 64 KiB', async () => {
    const endless = await serve((_req, res) => {
      res.writeHead(200);
      res.write('x');
    });
    expect(await probeHealth(endless, 200)).toEqual({ kind: 'fail', reason: 'no answer within 200 ms' });
    const huge = await serve((_req, res) => {
      res.writeHead(503, { 'content-type': 'application/json' });
      res.end(`{"status":"draining","pad":"${'x'.repeat(200_000)}"}`);
    });
    const r = await probeHealth(huge, 2000);
    expect(r.kind).toBe('fail');
    expect((r as { reason: string }).reason.startsWith('status 503: {"status":"draining","pad":"xxx')).toBe(true);
  });

  it('an answer other than 200 or a draining 503 fails with the status and body', async () => {
    const broken = await serve((_req, res) => res.writeHead(500, { 'content-type': 'text/plain' }).end('disk on fire\n'));
    expect(await probeHealth(broken, 1000)).toEqual({ kind: 'fail', reason: 'status 500: disk on fire' });
  });

  it('an answer that came in time is not a failure because the agent itself ran late', async () => {
    // The edge runs on a thread of its own and answers 30 ms after the request; meanwhile this
    // thread does not run for 300 ms, so the 100 ms timer is overdue and the answer waits in the
    // socket when it runs again (an agent starved of CPU on a busy host).
    const flag = new Int32Array(new SharedArrayBuffer(4));
    const edge = new Worker(
      `const { workerData, parentPort } = require('node:worker_threads');
       const flag = new Int32Array(workerData);
       const server = require('node:http').createServer((req, res) => {
         Atomics.store(flag, 0, 1);
         setTimeout(() => { res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}'); Atomics.store(flag, 0, 2); }, 30);
       });
       server.listen(0, '127.0.0.1', () => parentPort.postMessage(server.address().port));`,
      { eval: true, workerData: flag.buffer },
    );
    closers.push(async () => void (await edge.terminate()));
    const [port] = (await once(edge, 'message')) as [number];
    const probe = probeHealth(`http://127.0.0.1:${port}/_cdn/healthz`, 100);
    await new Promise<void>((resolve) => {
      const check = (): void => void (Atomics.load(flag, 0) >= 1 ? resolve() : setImmediate(check));
      check();
    });
    const until = Date.now() + 300;
    while (Date.now() < until) Atomics.load(flag, 0); // not running: the timer expires, the answer arrives
    expect(Atomics.load(flag, 0)).toBe(2);
    expect(await probe).toEqual({ kind: 'ok' });
  });
});
