/**
 * An https:// upstream: its certificate verified against the configured CA (besides Node's roots)
 * for its host or the configured servername, connections reused; a certificate that does not
 * verify is an upstream error (502, or the stale copy stale-if-error allows) with a log line, and
 * never a fallback to cleartext.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { validateConfig } from '../../../src/config/load.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { startEdge, type EdgeServer } from '../../../edge/server.js';
import { testCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { startTestEdge, testClock } from '../../support/edge.js';
import { capturedLog } from '../../support/logs.js';

let ca: TestCa;
let good: IssuedCert;
let named: IssuedCert;
let selfSigned: IssuedCert;
const BODY = Buffer.alloc(1024, 'u');

interface HttpsUpstream {
  server: Server;
  url: string;
  /** TLS connections accepted, and plaintext requests seen (none, ever). */
  handshakes: number;
  requests: number;
  use(pair: IssuedCert): Promise<void>;
  close(): Promise<void>;
}

async function httpsUpstream(pair: IssuedCert): Promise<HttpsUpstream> {
  const load = async (p: IssuedCert) => ({ cert: await readFile(p.cert), key: await readFile(p.key) });
  const server = createServer(await load(pair), (req, res) => {
    up.requests++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'public, max-age=60, stale-if-error=600', 'content-length': String(BODY.length) });
    res.end(req.method === 'HEAD' ? undefined : BODY);
  });
  server.on('secureConnection', () => up.handshakes++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const up: HttpsUpstream = {
    server,
    url: `https://127.0.0.1:${(server.address() as AddressInfo).port}`,
    handshakes: 0,
    requests: 0,
    async use(p) {
      server.setSecureContext(await load(p));
      // Connections already made keep their certificate: the next request must connect anew.
      server.closeAllConnections();
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
  return up;
}

beforeAll(async () => {
  ca = await testCa();
  good = await ca.issue('upstream', ['IP:127.0.0.1']);
  named = await ca.issue('named', ['origin.test']);
  selfSigned = await ca.selfSigned('self', ['IP:127.0.0.1']);
});
afterAll(() => ca.remove());

describe('https upstream', () => {
  it('verifies against the configured CA, reuses its connection, and stores what it fetched', async () => {
    const up = await httpsUpstream(good);
    const edge = await startTestEdge(up.url, { upstreamTls: { ca: [ca.caFile] } });
    try {
      for (const path of ['/a.bin', '/b.bin', '/c.bin']) {
        const res = await edge.get(path);
        expect(res.status).toBe(200);
        expect(res.body).toEqual(BODY);
        expect(res.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      }
      expect(up.handshakes).toBe(1);
      expect(up.requests).toBe(3);
    } finally {
      await edge.destroy();
      await up.close();
    }
  });

  it('checks the configured servername, not the address', async () => {
    const up = await httpsUpstream(named);
    const edge = await startTestEdge(up.url, { upstreamTls: { ca: [ca.caFile], servername: 'origin.test' } });
    const wrong = await startTestEdge(up.url, { upstreamTls: { ca: [ca.caFile] } });
    try {
      expect((await edge.get('/n.bin')).status).toBe(200);
      const refused = await wrong.get('/n.bin');
      expect(refused.status).toBe(502);
      expect(JSON.parse(refused.body.toString())).toMatchObject({ error: 'upstream_tls' });
      expect(up.requests).toBe(1);
    } finally {
      await edge.destroy();
      await wrong.destroy();
      await up.close();
    }
  });

  it('refuses a self-signed upstream with 502 and a log line, never asking it in cleartext', async () => {
    const up = await httpsUpstream(selfSigned);
    const log = capturedLog();
    const config = validateConfig(edgeConfigSchema, { listen: '127.0.0.1:0', upstream: up.url, upstreamTls: { ca: [ca.caFile] }, pop: 'test', node: 'e', cacheDir: `${ca.dir}/cache-self`, accessLog: false, drain: 0 }, 'test settings', {});
    const edge: EdgeServer = await startEdge(config, log.logger, { processMetrics: false });
    try {
      for (let i = 0; i < 3; i++) {
        const res = await request(`${edge.url}/s.bin`);
        expect(res.statusCode).toBe(502);
        expect(await res.body.json()).toMatchObject({ error: 'upstream_tls', message: expect.stringMatching(/^upstream TLS failed: DEPTH_ZERO_SELF_SIGNED_CERT: /) });
      }
      expect(up.requests).toBe(0);
      const refusals = log.lines().filter((l) => String(l['msg']).startsWith('upstream certificate refused'));
      // Once a minute at most, however many requests fail.
      expect(refusals).toHaveLength(1);
      expect(refusals[0]).toMatchObject({ level: 'error', upstream: up.url, code: 'DEPTH_ZERO_SELF_SIGNED_CERT' });
    } finally {
      await edge.close(1_000);
      await up.close();
    }
  });

  it('a stale copy is served when the upstream certificate goes bad (stale-if-error)', async () => {
    const up = await httpsUpstream(good);
    const clock = testClock();
    const edge = await startTestEdge(up.url, { upstreamTls: { ca: [ca.caFile] } }, { clock });
    try {
      expect((await edge.get('/stale.bin')).status).toBe(200);
      await up.use(selfSigned);
      clock.advance(120_000);
      const stale = await edge.get('/stale.bin');
      expect(stale.status).toBe(200);
      expect(stale.body).toEqual(BODY);
      expect(stale.headers['cache-status']).toMatch(/^anycdn; fwd=stale; .*detail=stale-if-error/);
    } finally {
      await edge.destroy();
      await up.close();
    }
  });

  it('refuses to start with a CA file that is not a certificate, naming it', async () => {
    const config = validateConfig(edgeConfigSchema, { listen: '127.0.0.1:0', upstream: 'https://127.0.0.1:9', upstreamTls: { ca: [good.key] }, pop: 'test', node: 'e', cacheDir: `${ca.dir}/cache-bad`, accessLog: false }, 'test settings', {});
    await expect(startEdge(config, capturedLog().logger, { processMetrics: false })).rejects.toThrow(`${good.key}: not a PEM certificate`);
  });
});
