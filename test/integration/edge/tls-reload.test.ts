/**
 * Certificates reloaded without a restart: files replaced (renamed into place as certbot's links
 * are, or written over as acme.sh does) are picked up for new handshakes while a connection
 * already open keeps its session; a pair that does not load (expired, key not matching, not PEM)
 * is refused with a log line naming the file and the previous one stays in use; `reloadTls()`
 * (what SIGHUP calls) reloads without a file event; the expiry of each certificate is a metric.
 */
import { X509Certificate } from 'node:crypto';
import { copyFile, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { startEdge, type EdgeServer } from '../../../edge/server.js';
import { testCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { metricValue } from '../../support/edge.js';
import { h2request, h2session, handshake } from '../../support/https-clients.js';
import { capturedLog, type CapturedLog } from '../../support/logs.js';

let upstream: Server;
let ca: TestCa;
let caPem: Buffer;
let log: CapturedLog;
let edge: EdgeServer;
let live: { cert: string; key: string };
let pairs: Record<'v1' | 'v2' | 'expired' | 'other', IssuedCert>;

const serialOf = async (file: string): Promise<string> => new X509Certificate(await readFile(file)).serialNumber;
const notAfterOf = async (file: string): Promise<number> => Math.floor(Date.parse(new X509Certificate(await readFile(file)).validTo) / 1000);

/** The serial number a new handshake gets, once it is `want` (polled: the reload follows the file events by a debounce). */
async function servedSerial(want: string, timeoutMs = 5_000): Promise<string> {
  const deadline = performance.now() + timeoutMs;
  let serial = '';
  while (performance.now() < deadline) {
    serial = (await handshake(edge.https!.port, { ca: caPem })).peer.serialNumber;
    if (serial === want) return serial;
    await new Promise((r) => setTimeout(r, 100));
  }
  return serial;
}

/** Replaces a file by a rename, as a link swapped by certbot or a deploy hook's mv: a new inode. */
async function renameInto(source: string, target: string): Promise<void> {
  await copyFile(source, `${target}.new`);
  await rename(`${target}.new`, target);
}

beforeAll(async () => {
  upstream = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/plain', 'cache-control': 'public, max-age=60' }).end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  ca = await testCa();
  caPem = await readFile(ca.caFile);
  const names = ['localhost', 'IP:127.0.0.1'];
  pairs = {
    v1: await ca.issue('v1', names, { days: 5 }),
    v2: await ca.issue('v2', names, { days: 20 }),
    expired: await ca.issue('expired', names, { dates: { start: new Date('2020-01-01T00:00:00Z'), end: new Date('2020-01-02T00:00:00Z') } }),
    other: await ca.issue('other', ['other.test']),
  };
  const dir = join(ca.dir, 'live');
  await mkdir(dir);
  live = { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem') };
  await copyFile(pairs.v1.cert, live.cert);
  await copyFile(pairs.v1.key, live.key);
  log = capturedLog();
  const config = validateConfig(
    edgeConfigSchema,
    {
      listen: '127.0.0.1:0',
      upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      pop: 'test',
      node: 'edge-1',
      cacheDir: join(ca.dir, 'cache'),
      drain: 0,
      accessLog: false,
      tls: { listen: '127.0.0.1:0', certificates: [live] },
    },
    'test settings',
    {},
  );
  edge = await startEdge(config, log.logger, { processMetrics: false });
});

afterAll(async () => {
  await edge.close(1_000);
  await new Promise((r) => upstream.close(r));
  await ca.remove();
});

describe('certificate reload', () => {
  it('shows each certificate expiry in the metrics', async () => {
    const text = await edge.metrics.registry.metrics();
    expect(metricValue(text, 'anycdn_edge_tls_certificate_expiry_timestamp_seconds', { cert: live.cert, name: 'localhost' })).toBe(await notAfterOf(pairs.v1.cert));
  });

  it('serves renewed files to new handshakes, while a connection already open keeps its session', async () => {
    const v1 = await serialOf(pairs.v1.cert);
    const v2 = await serialOf(pairs.v2.cert);
    const session = await h2session(edge.https!.url, { ca: caPem });
    try {
      expect((session.socket as TLSSocket).getPeerCertificate().serialNumber).toBe(v1);
      expect((await h2request(session, '/a.txt')).status).toBe(200);
      await renameInto(pairs.v2.cert, live.cert);
      await renameInto(pairs.v2.key, live.key);
      expect(await servedSerial(v2)).toBe(v2);
      await log.waitFor((msg) => msg === 'certificates reloaded');
      // The open connection: same session, still answering.
      expect(session.closed).toBe(false);
      expect((session.socket as TLSSocket).getPeerCertificate().serialNumber).toBe(v1);
      expect((await h2request(session, '/a.txt')).status).toBe(200);
      const text = await edge.metrics.registry.metrics();
      expect(metricValue(text, 'anycdn_edge_tls_certificate_expiry_timestamp_seconds', { cert: live.cert, name: 'localhost' })).toBe(await notAfterOf(pairs.v2.cert));
    } finally {
      session.close();
    }
  });

  it.each([
    ['an expired certificate', 'expired', 'cert', /the certificate expired on 2020-01-02T00:00:00\.000Z$/],
    ['a key that is not the certificate\'s', 'other', 'key', /this key does not match the certificate in /],
    ['a file that is not PEM', 'garbage', 'cert', /not a PEM certificate$/],
  ])('refuses %s, naming the file, and keeps the previous one', async (_what, source, blamed, message) => {
    const v2 = await serialOf(pairs.v2.cert);
    const failedBefore = metricValue(await edge.metrics.registry.metrics(), 'anycdn_edge_tls_reloads_total', { result: 'failed' });
    const seen = log.lines().length;
    // Written in place, as acme.sh's --cert-file does.
    if (source === 'expired') {
      await writeFile(live.cert, await readFile(pairs.expired.cert));
      await writeFile(live.key, await readFile(pairs.expired.key));
    } else if (source === 'other') {
      await writeFile(live.key, await readFile(pairs.other.key));
    } else {
      await writeFile(live.cert, 'not a certificate\n');
    }
    const line = await log.waitFor((msg, l) => log.lines().indexOf(l) >= seen && msg.startsWith('certificate not reloaded'));
    const file = blamed === 'cert' ? live.cert : live.key;
    expect(line['msg']).toMatch(new RegExp(`^certificate not reloaded, the previous one stays in use: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: `));
    expect(line['msg']).toMatch(message);
    expect(line['level']).toBe('error');
    expect((await handshake(edge.https!.port, { ca: caPem })).peer.serialNumber).toBe(v2);
    expect(metricValue(await edge.metrics.registry.metrics(), 'anycdn_edge_tls_reloads_total', { result: 'failed' })).toBeGreaterThan(failedBefore);
    // Put the good pair back for the next case.
    await writeFile(live.cert, await readFile(pairs.v2.cert));
    await writeFile(live.key, await readFile(pairs.v2.key));
    await edge.reloadTls();
  });

  it('reloads on request (SIGHUP) without a file event', async () => {
    const v1 = await serialOf(pairs.v1.cert);
    await writeFile(live.cert, await readFile(pairs.v1.cert));
    await writeFile(live.key, await readFile(pairs.v1.key));
    // At once: the file events' reload comes only after its debounce.
    await edge.reloadTls();
    expect((await handshake(edge.https!.port, { ca: caPem })).peer.serialNumber).toBe(v1);
  });
});
