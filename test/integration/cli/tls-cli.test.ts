/**
 * `anycdn edge` with `tls` and `workers: 2`, as systemd runs it: every worker serves HTTPS on the
 * shared port, a session made on one worker resumes on the others (one ticket key for the node,
 * made by the primary), SIGHUP reaches every worker and reloads the certificates without ending any
 * process, and SIGTERM still drains and exits 0. The origin takes SIGHUP the same way.
 */
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { X509Certificate } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testCa, type IssuedCert, type TestCa } from '../../support/certs.js';
import { h2request, h2session, handshake } from '../../support/https-clients.js';
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
    await until(() => logLines(edge).some((l) => l['msg'] === 'edge listening' && l['workers'] === 2), 30_000);
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
