/**
 * The origin over HTTPS, the whole path encrypted without a third-party proxy: an edge fetching
 * from `https://` with its client certificate (mutual TLS, `tls.clientCa`), uploads over HTTP/2 and
 * HTTP/1.1, and clients without a certificate, or with one another CA signed, refused at the
 * handshake.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { originConfigSchema } from '../../../origin/config.js';
import { startOrigin, type OriginServer } from '../../../origin/server.js';
import { testCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { startTestEdge } from '../../support/edge.js';
import { h1request, h2request, h2session } from '../../support/https-clients.js';
import { capturedLog, type CapturedLog } from '../../support/logs.js';
import { PUBLISH_TOKEN, PURGE_TOKEN } from '../../support/origin.js';
import { EDGE_TOKEN, postPurge } from '../../support/purge-stream.js';

let ca: TestCa;
let otherCa: TestCa;
let caPem: Buffer;
let serverPair: IssuedCert;
let edgeClient: IssuedCert;
let strangerClient: IssuedCert;
let origin: OriginServer;
let dataDir: string;
let log: CapturedLog;
let https: { url: string; port: number };

beforeAll(async () => {
  ca = await testCa();
  otherCa = await testCa();
  caPem = await readFile(ca.caFile);
  serverPair = await ca.issue('origin', ['origin.test', 'IP:127.0.0.1']);
  edgeClient = await ca.issue('edge-client', ['edge-1.test']);
  strangerClient = await otherCa.issue('stranger', ['stranger.test']);
  dataDir = await mkdtemp(join(tmpdir(), 'anycdn-origin-tls-'));
  log = capturedLog();
  const config = validateConfig(
    originConfigSchema,
    { listen: '127.0.0.1:0', dataDir, publishToken: PUBLISH_TOKEN, purgeToken: PURGE_TOKEN, edgeToken: EDGE_TOKEN, accessLog: false, tls: { listen: '127.0.0.1:0', certificates: [serverPair], clientCa: [ca.caFile] } },
    'test settings',
    {},
  );
  origin = await startOrigin(config, log.logger, { processMetrics: false });
  https = origin.https!;
  // The cleartext listener stays as it was.
  const put = await request(`${origin.url}/_cdn/assets/photos/a.txt`, { method: 'PUT', headers: { authorization: `Bearer ${PUBLISH_TOKEN}` }, body: 'hello over tls' });
  expect(put.statusCode).toBe(201);
  await put.body.dump();
});

afterAll(async () => {
  await origin.close(1_000);
  await rm(dataDir, { recursive: true, force: true });
  await ca.remove();
  await otherCa.remove();
});

describe('origin over HTTPS with client certificates', () => {
  it('serves an edge that shows its certificate, through a verified https upstream', async () => {
    const edge = await startTestEdge(https.url, { upstreamTls: { ca: [ca.caFile], cert: edgeClient.cert, key: edgeClient.key } });
    try {
      const res = await edge.get('/photos/a.txt');
      expect(res.status).toBe(200);
      expect(res.body.toString()).toBe('hello over tls');
      expect(res.headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
    } finally {
      await edge.destroy();
    }
  });

  it('an edge follows the purge stream over the same verified TLS, with its client certificate', async () => {
    const edge = await startTestEdge(https.url, { edgeToken: EDGE_TOKEN, upstreamTls: { ca: [ca.caFile], cert: edgeClient.cert, key: edgeClient.key } });
    try {
      await edge.owner.purges.subscriber!.caughtUp();
      expect((await edge.get('/photos/a.txt')).headers['cache-status']).toBe('anycdn; fwd=miss; fwd-status=200; stored');
      const answer = await postPurge(origin.url, PURGE_TOKEN, { urls: ['/photos/a.txt'] }, '?wait=10');
      expect(answer.json).toMatchObject({ complete: true, edges: [{ node: 'test/edge-1', applied: true }] });
      expect(edge.owner.store.keysUnderPath!('/photos/a.txt')).toEqual([]);
    } finally {
      await edge.destroy();
    }
  });

  it('an edge without a client certificate gets 502 upstream_tls', async () => {
    const edge = await startTestEdge(https.url, { upstreamTls: { ca: [ca.caFile] } });
    try {
      const res = await edge.get('/photos/a.txt');
      // The origin refuses the handshake after the client's Finished (TLS 1.3) and closes: the edge
      // sees the connection closed (or, when it reads it first, the alert). The origin's log says why.
      expect(res.status).toBe(502);
      const body = JSON.parse(res.body.toString()) as { error: string; message: string };
      expect([
        ['upstream_unreachable', 'upstream failed: UND_ERR_SOCKET'],
        ['upstream_tls', 'upstream TLS failed: ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED'],
      ]).toContainEqual([body.error, body.message.replace(/^(upstream TLS failed: [A-Z0-9_]+):.*$/, '$1')]);
      const line = await log.waitFor((msg) => msg.startsWith('TLS handshake refused'));
      expect(line).toMatchObject({ level: 'warn', client: '127.0.0.1', code: 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' });
    } finally {
      await edge.destroy();
    }
  });

  it('takes uploads over HTTP/2 and HTTP/1.1 from a client with a certificate', async () => {
    const [cert, key] = await Promise.all([readFile(edgeClient.cert), readFile(edgeClient.key)]);
    const session = await h2session(https.url, { ca: caPem, cert, key });
    try {
      const put = await h2request(session, '/_cdn/assets/docs/h2.txt', { ':method': 'PUT', authorization: `Bearer ${PUBLISH_TOKEN}` }, Buffer.from('uploaded over h2'));
      expect(put.status).toBe(201);
      const got = await h2request(session, '/docs/h2.txt');
      expect(got.status).toBe(200);
      expect(got.body.toString()).toBe('uploaded over h2');
      expect(got.headers['etag']).toMatch(/^"/);
    } finally {
      session.close();
    }
    const h1 = await h1request(`${https.url}/docs/h2.txt`, { ca: caPem, cert, key });
    expect(h1.status).toBe(200);
  });

  it('refuses the handshake of a client without a certificate, or with one another CA signed', async () => {
    const [cert, key] = await Promise.all([readFile(strangerClient.cert), readFile(strangerClient.key)]);
    // Refused at the handshake: the alert, or the connection reset when it closes before the client reads it.
    await expect(h1request(`${https.url}/photos/a.txt`, { ca: caPem, cert, key })).rejects.toMatchObject({ code: expect.stringMatching(/^(?:ERR_SSL_TLSV1_ALERT_UNKNOWN_CA|ECONNRESET)$/) });
    await expect(h1request(`${https.url}/photos/a.txt`, { ca: caPem })).rejects.toMatchObject({ code: 'ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED' });
  });
});
