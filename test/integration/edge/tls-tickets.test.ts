/**
 * Session resumption with tickets: across two edges sharing a ticket key file (anycast moves a
 * client to another node), never with an edge that has other keys, through a rotation (a key added
 * at the top: old tickets still resume and are replaced; the last dropped: its tickets no longer
 * resume), over TLS 1.3 and 1.2; and Node's single-key fallback where its ticket hook is missing.
 */
import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createSecureContext, createServer as createTlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { silentLogger } from '../../../src/log.js';
import { TicketKeys } from '../../../src/serve/ticket-keys.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { startEdge, type EdgeServer } from '../../../edge/server.js';
import { testCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { handshake } from '../../support/https-clients.js';
import { capturedLog, type CapturedLog } from '../../support/logs.js';

let upstream: Server;
let ca: TestCa;
let caPem: Buffer;
let pair: IssuedCert;
let keyFile: string;
const keys = [randomBytes(48), randomBytes(48)];
let log: CapturedLog;
let a: EdgeServer;
let b: EdgeServer;
let c: EdgeServer;

async function writeKeys(list: Buffer[]): Promise<void> {
  await writeFile(`${keyFile}.new`, `# ticket keys\n${list.map((k) => k.toString('base64')).join('\n')}\n`);
  await rename(`${keyFile}.new`, keyFile);
}

async function edgeWith(name: string, tls: Record<string, unknown>): Promise<EdgeServer> {
  const config = validateConfig(
    edgeConfigSchema,
    { listen: '127.0.0.1:0', upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`, pop: 'test', node: name, cacheDir: join(ca.dir, `cache-${name}`), drain: 0, accessLog: false, tls: { listen: '127.0.0.1:0', certificates: [pair], ...tls } },
    'test settings',
    {},
  );
  return startEdge(config, name === 'a' ? log.logger : silentLogger(), { processMetrics: false });
}

/** Handshakes until the edge at `port` resumes `session` as `want` says, or 5 s pass (a reload follows the file by a debounce). */
async function resumes(port: number, session: Buffer, want: boolean): Promise<boolean> {
  const deadline = performance.now() + 5_000;
  let reused = !want;
  while (performance.now() < deadline) {
    reused = (await handshake(port, { ca: caPem, session })).reused;
    if (reused === want) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return reused;
}

beforeAll(async () => {
  upstream = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  ca = await testCa();
  caPem = await readFile(ca.caFile);
  pair = await ca.issue('local', ['localhost', 'IP:127.0.0.1']);
  keyFile = join(ca.dir, 'ticket-keys');
  await writeKeys([keys[0]!]);
  log = capturedLog();
  a = await edgeWith('a', { ticketKeyFile: keyFile });
  b = await edgeWith('b', { ticketKeyFile: keyFile });
  c = await edgeWith('c', {});
});

afterAll(async () => {
  await Promise.all([a.close(1_000), b.close(1_000), c.close(1_000)]);
  await new Promise((r) => upstream.close(r));
  await ca.remove();
});

describe('session tickets', () => {
  it.each(['TLSv1.3', 'TLSv1.2'] as const)('%s: a session from one edge resumes on another with the same key file, not on one without', async (version) => {
    const first = await handshake(a.https!.port, { ca: caPem, maxVersion: version });
    expect(first.protocol).toBe(version);
    expect(first.reused).toBe(false);
    expect(first.session).toBeDefined();
    expect((await handshake(a.https!.port, { ca: caPem, maxVersion: version, session: first.session })).reused).toBe(true);
    expect((await handshake(b.https!.port, { ca: caPem, maxVersion: version, session: first.session })).reused).toBe(true);
    expect((await handshake(c.https!.port, { ca: caPem, maxVersion: version, session: first.session })).reused).toBe(false);
  });

  it('rotation: a key added at the top keeps old tickets resuming (and renews them); dropping the last ends them', async () => {
    const old = (await handshake(a.https!.port, { ca: caPem })).session!;
    await writeKeys([keys[1]!, keys[0]!]);
    await log.waitFor((msg) => msg === 'ticket keys reloaded');
    expect(await resumes(b.https!.port, old, true)).toBe(true);
    // Resumed with the older key: the ticket that comes back is made with the new one.
    const renewed = await handshake(a.https!.port, { ca: caPem, session: old });
    expect(renewed.reused).toBe(true);
    const fresh = (await handshake(a.https!.port, { ca: caPem })).session!;
    await writeKeys([keys[1]!]);
    expect(await resumes(a.https!.port, old, false)).toBe(false);
    expect(await resumes(b.https!.port, old, false)).toBe(false);
    expect((await handshake(a.https!.port, { ca: caPem, session: fresh })).reused).toBe(true);
    expect((await handshake(b.https!.port, { ca: caPem, session: renewed.session! })).reused).toBe(true);
  });

  it('a key file that does not parse keeps the keys in use, with a log line naming it', async () => {
    const session = (await handshake(a.https!.port, { ca: caPem })).session!;
    const seen = log.lines().length;
    await writeFile(keyFile, 'not base64!\n');
    const line = await log.waitFor((msg, l) => log.lines().indexOf(l) >= seen && msg.startsWith('ticket keys not reloaded'));
    expect(line['msg']).toBe(`ticket keys not reloaded, the previous ones stay in use: ${keyFile}: line 1: expected 48 bytes in base64 (openssl rand -base64 48)`);
    expect((await handshake(a.https!.port, { ca: caPem, session })).reused).toBe(true);
    await writeKeys([keys[1]!]);
  });
});

describe('without the native ticket hook', () => {
  it('the first key alone encrypts and decrypts', async () => {
    const ticketKeys = new TicketKeys([keys[0]!], { multiKey: false });
    expect(ticketKeys.multiKey).toBe(false);
    const [cert, key] = await Promise.all([readFile(pair.cert), readFile(pair.key)]);
    const server = createTlsServer({ cert, key }, (s) => s.resume());
    ticketKeys.install((server as unknown as { _sharedCreds: ReturnType<typeof createSecureContext> })._sharedCreds);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    try {
      const old = (await handshake(port, { ca: caPem })).session!;
      expect((await handshake(port, { ca: caPem, session: old })).reused).toBe(true);
      ticketKeys.set([keys[1]!, keys[0]!]);
      // The older key no longer decrypts: the documented limit of Node's one-key API.
      expect((await handshake(port, { ca: caPem, session: old })).reused).toBe(false);
      const fresh = (await handshake(port, { ca: caPem })).session!;
      expect((await handshake(port, { ca: caPem, session: fresh })).reused).toBe(true);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
