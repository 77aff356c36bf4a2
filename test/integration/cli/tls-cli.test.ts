/**
 * `anycdn edge` with `tls` and `workers: 2`, as systemd runs it: every worker serves HTTPS on the
 * shared port, a session made on one worker resumes on the others (one ticket key for the node,
 * made by the primary), SIGHUP reaches every worker and reloads the certificates without ending any
 * process, and SIGTERM drains every worker's HTTPS clients (HTTP/2: GOAWAY after the next answer,
 * streams under way finished; HTTP/1.1: `Connection: close`; health 503) and exits in the drain
 * time. The origin takes SIGHUP the same way.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { ClientHttp2Session } from 'node:http2';
import { Agent, request as httpsRequest } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { h1request, h2request, h2session, handshake, type ClientResponse } from '../../support/https-clients.js';
import { cliBuilt, exited, startCli, stopAll, type CliProcess } from '../../support/process.js';

let ca: TestCa;
let caPem: Buffer;
let dir: string;
let pairs: { v1: IssuedCert; v2: IssuedCert };
let live: { cert: string; key: string };

beforeAll(async () => {
  ca = await testCa();
  caPem = await readFile(ca.caFile);
  dir = await mkdtemp(join(tmpdir(), 'anycdn-tls-cli-'));
  pairs = { v1: await ca.issue('v1', ['localhost', 'IP:127.0.0.1']), v2: await ca.issue('v2', ['localhost', 'IP:127.0.0.1'], { days: 20 }) };
  live = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  await copyFile(pairs.v1.cert, live.cert);
  await copyFile(pairs.v1.key, live.key);
});

afterAll(async () => {
  await stopAll();
  await rm(dir, { recursive: true, force: true });
  await ca.remove();
});

/** Every JSON log line. */
function logLines(cli: CliProcess): Record<string, unknown>[] {
  return cli
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** A request on the agent's kept connection: the answer, the client's port, and when its socket closes. */
function h1keepAlive(url: string, agent: Agent): Promise<ClientResponse & { localPort: number | undefined; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { agent }, (res) => {
      const chunks: Buffer[] = [];
      const socket = res.socket as Socket;
      const closed = new Promise<void>((r) => (socket.destroyed ? r() : socket.once('close', () => r())));
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks), informational: [], localPort: socket.localPort, closed }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** An HTTP/1.1 connection over TLS that asks once and then stays idle; resolves once answered, with when the server closes it. */
function idleHttp1(port: number): Promise<{ closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: '127.0.0.1', port, ca: caPem, ALPNProtocols: ['http/1.1'] });
    socket.once('secureConnect', () => socket.write('GET /_cdn/healthz HTTP/1.1\r\nhost: localhost\r\n\r\n'));
    socket.once('data', () => resolve({ closed: new Promise<void>((r) => socket.once('close', () => r())) }));
    socket.once('error', reject);
  });
}

/** The error code of a request on a session that received GOAWAY: thrown (Node 20), or the stream's error (Node 26). */
function refusedStream(session: ClientHttp2Session): Promise<string | undefined> {
  return new Promise((resolve) => {
    try {
      const stream = session.request({ ':path': '/a.bin' });
      stream.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
      stream.once('response', () => resolve(undefined));
    } catch (err) {
      resolve((err as NodeJS.ErrnoException).code);
    }
  });
}

/** Resolves with the code of the GOAWAY a session receives. */
function goawayOf(session: ClientHttp2Session): Promise<number> {
  return new Promise((resolve) => session.once('goaway', (code: number) => resolve(code)));
}

async function until(check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(!cliBuilt)('anycdn edge with tls and workers (needs dist/, built by npm test)', () => {
  it('serves HTTPS from every worker, resumes sessions across them, reloads on SIGHUP, drains on SIGTERM', async () => {
    const config = join(dir, 'edge.yaml');
    await writeFile(
      config,
      `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\npop: t\nnode: t1\ncacheDir: ${join(dir, 'cache')}\ndrain: 200ms\nworkers: 2\naccessLog: false\ntls:\n  listen: 127.0.0.1:0\n  certificates:\n    - { cert: ${live.cert}, key: ${live.key} }\n`,
    );
    const edge = startCli(['edge', '--config', config]);
    // The primary's line, once every worker listens (each worker says 'edge listening' too).
    await edge.waitForOutput('"workers":2', 30_000); // the node's output in the error, should it not come
    const listening = logLines(edge).find((l) => l['msg'] === 'edge listening' && l['workers'] === 2)!;
    const url = String(listening['https']);
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(url).port);

    const session = await h2session(url, { ca: caPem });
    expect((await h2request(session, '/_cdn/healthz')).status).toBe(200);
    session.close();

    // Connections go round the workers: every one resumes the first's session.
    const first = await handshake(port, { ca: caPem });
    const resumed = [];
    for (let i = 0; i < 6; i++) resumed.push((await handshake(port, { ca: caPem, session: first.session })).reused);
    expect(resumed).toEqual([true, true, true, true, true, true]);

    // SIGHUP right after the files change, before the file watch's debounce: each worker reloads for SIGHUP.
    await writeFile(live.cert, await readFile(pairs.v2.cert));
    await writeFile(live.key, await readFile(pairs.v2.key));
    edge.child.kill('SIGHUP');
    await until(() => logLines(edge).filter((l) => l['msg'] === 'certificates reloaded' && l['reason'] === 'SIGHUP').length === 2);
    expect(logLines(edge).some((l) => l['msg'] === 'SIGHUP: reloading certificates and ticket keys')).toBe(true);
    const v2 = new X509Certificate(await readFile(pairs.v2.cert)).serialNumber;
    for (let i = 0; i < 4; i++) expect((await handshake(port, { ca: caPem })).peer.serialNumber).toBe(v2);

    edge.child.kill('SIGTERM');
    expect(await exited(edge.child, 30_000)).toBe(0);
  });

  it('drains on SIGTERM: HTTP/2 sessions get GOAWAY after their next answer, HTTP/1.1 Connection: close, health 503, exit within the drain time', async () => {
    const slowMs = 1_500;
    let slowAsked = false;
    const upstream: Server = createServer((req, res) => {
      const body = Buffer.alloc(4096, req.url === '/slow.bin' ? 's' : 'a');
      const answer = (): void => void res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=600', 'content-length': String(body.length) }).end(body);
      slowAsked ||= req.url === '/slow.bin';
      if (req.url === '/slow.bin') setTimeout(answer, slowMs);
      else answer();
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const drainMs = 3_000;
    const config = join(dir, 'drain.yaml');
    await copyFile(pairs.v1.cert, live.cert);
    await copyFile(pairs.v1.key, live.key);
    await writeFile(
      config,
      `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:${(upstream.address() as AddressInfo).port}\npop: t\nnode: t2\ncacheDir: ${join(dir, 'drain-cache')}\ndrain: ${drainMs}ms\nworkers: 2\naccessLog: false\ntls:\n  listen: 127.0.0.1:0\n  certificates:\n    - { cert: ${live.cert}, key: ${live.key} }\n`,
    );
    const edge = startCli(['edge', '--config', config]);
    const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: caPem });
    try {
      await edge.waitForOutput('"workers":2', 30_000); // the node's output in the error, should it not come
      const listening = logLines(edge).find((l) => l['msg'] === 'edge listening' && l['workers'] === 2)!;
      const url = String(listening['https']);
      const port = Number(new URL(url).port);

      // Before: an HTTP/2 session that will ask again during the drain, one that stays idle, and an HTTP/1.1 keep-alive connection.
      const active = await h2session(url, { ca: caPem });
      const idle = await h2session(url, { ca: caPem });
      expect((await h2request(active, '/a.bin')).status).toBe(200);
      expect((await h2request(idle, '/_cdn/healthz')).status).toBe(200);
      const before = await h1keepAlive(`${url}/a.bin`, agent);
      expect(before.status).toBe(200);
      expect(before.headers['connection']).toBe('keep-alive');
      // An idle HTTP/1.1 connection that never asks again.
      const idleH1 = await idleHttp1(port);
      const goaways = { active: goawayOf(active), idle: goawayOf(idle) };
      // A stream under way when the drain starts (upstream answers it after 1.5 s).
      const slow = h2request(active, '/slow.bin');
      // Under way once the worker asks upstream for it (a fixed wait can be too short on a loaded machine).
      await until(() => slowAsked);

      const signalled = performance.now();
      edge.child.kill('SIGTERM');
      // The primary's line and each worker's.
      await until(() => logLines(edge).filter((l) => l['msg'] === 'draining').length === 3);

      const health = await h1request(`${url}/_cdn/healthz`, { ca: caPem });
      expect(health.status).toBe(503);
      expect(JSON.parse(health.body.toString())).toMatchObject({ status: 'draining', checks: { draining: true } });
      expect(health.headers['connection']).toBe('close');

      // HTTP/1.1: the next answer on the kept connection says close, and the connection ends.
      const during = await h1keepAlive(`${url}/a.bin`, agent);
      expect(during.status).toBe(200);
      expect(during.headers['connection']).toBe('close');
      expect(during.localPort).toBe(before.localPort);
      await during.closed;

      // HTTP/2: the next answer comes, then GOAWAY (NO_ERROR) with the stream under way finished;
      // a request after it is refused by the client: it opens a new connection, served too.
      const next = await h2request(active, '/a.bin');
      expect(next.status).toBe(200);
      expect(next.headers['cache-status']).toMatch(/^anycdn; hit; ttl=\d+$/);
      expect(await goaways.active).toBe(0);
      const finished = await slow;
      expect([finished.status, finished.body.length, finished.body[0]]).toEqual([200, 4096, 's'.charCodeAt(0)]);
      expect(await refusedStream(active)).toBe('ERR_HTTP2_GOAWAY_SESSION');
      const fresh = await h2session(url, { ca: caPem });
      const freshGoaway = goawayOf(fresh);
      expect((await h2request(fresh, '/a.bin')).status).toBe(200);
      expect(await freshGoaway).toBe(0);
      expect(performance.now() - signalled).toBeLessThan(drainMs);

      // The idle ones are closed when the listeners close, at the end of the drain; the process exits then.
      expect(await goaways.idle).toBe(0);
      await idleH1.closed;
      expect(await exited(edge.child, 15_000)).toBe(0);
      const took = performance.now() - signalled;
      expect(took).toBeGreaterThan(drainMs);
      // The shield closes after the workers: a second or two on a busy machine.
      expect(took).toBeLessThan(drainMs + 4_000);
      for (const s of [active, idle, fresh]) s.destroy();
    } finally {
      agent.destroy();
      upstream.closeAllConnections();
      await new Promise((r) => upstream.close(r));
    }
  });

  it('the origin reloads its certificates on SIGHUP and stays up', async () => {
    const config = join(dir, 'origin.yaml');
    await copyFile(pairs.v1.cert, live.cert);
    await copyFile(pairs.v1.key, live.key);
    await writeFile(config, `listen: 127.0.0.1:0\ndataDir: ${join(dir, 'origin')}\npublishToken: cli-test-publish-token-0123456789\npurgeToken: cli-test-publish-token-0123456789\naccessLog: false\ntls:\n  listen: 127.0.0.1:0\n  certificates:\n    - { cert: ${live.cert}, key: ${live.key} }\n`);
    const origin = startCli(['origin', '--config', config]);
    const listening = await origin.waitForLog('origin listening', 30_000);
    const port = Number(new URL(String(listening['https'])).port);
    await writeFile(live.cert, await readFile(pairs.v2.cert));
    await writeFile(live.key, await readFile(pairs.v2.key));
    origin.child.kill('SIGHUP');
    const line = await origin.waitForLog('certificates reloaded');
    expect(line['reason']).toBe('SIGHUP');
    expect((await handshake(port, { ca: caPem })).peer.serialNumber).toBe(new X509Certificate(await readFile(pairs.v2.cert)).serialNumber);
    origin.child.kill('SIGTERM');
    expect(await exited(origin.child, 30_000)).toBe(0);
  });
});
