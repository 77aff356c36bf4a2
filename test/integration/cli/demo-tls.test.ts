/**
 * `anycdn demo --tls`: a throwaway self-signed certificate made in the data folder, the edge over
 * HTTPS alone on port N (HTTP/2 and HTTP/1.1), the origin on N+1, the https URLs printed with how
 * to trust the certificate; stopped by SIGTERM with its temporary folder removed.
 */
import { X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { curl, h1request, h2request, h2session } from '../../support/https-clients.js';
import { freePortPair } from '../../support/ports.js';
import { cliBuilt, exited, startCli, stopAll } from '../../support/process.js';

const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

describe.skipIf(!cliBuilt)('anycdn demo --tls (needs dist/, built by npm test)', () => {
  it('serves the edge over HTTPS with a self-signed certificate for 127.0.0.1 and localhost', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'anycdn-demo-tls-'));
    dirs.push(tmp);
    const port = await freePortPair();
    const demo = startCli(['demo', '--tls', '--port', String(port)], { TMPDIR: tmp });
    await demo.waitForOutput('Press Ctrl-C to stop.', 45_000);
    const out = demo.output();
    const dataDir = /Data folder: +(\S+)/.exec(out)![1]!;
    const certFile = join(dataDir, 'tls', 'cert.pem');
    expect(out).toContain(`an edge at https://127.0.0.1:${port} in front of an origin at http://127.0.0.1:${port + 1}.`);
    expect(out).toContain(`curl: trust it with --cacert ${certFile} (or skip the check with -k).`);
    expect(out).toContain(`Open the demo page:   https://127.0.0.1:${port}/`);

    const pem = await readFile(certFile);
    const cert = new X509Certificate(pem);
    expect(cert.subjectAltName).toBe('DNS:localhost, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(cert.issuer).toBe(cert.subject);

    const session = await h2session(`https://127.0.0.1:${port}`, { ca: pem });
    const page = await h2request(session, '/');
    expect(page.status).toBe(200);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    session.close();
    const photo = await h1request(`https://localhost:${port}/photos/landscape.jpg`, { ca: pem });
    expect(photo.status).toBe(200);
    const viaCurl = await curl(['--http2', '--cacert', certFile, `https://127.0.0.1:${port}/_cdn/healthz`]);
    expect(viaCurl.written).toBe('2 0');
    // No cleartext edge: the port speaks TLS only.
    await expect(curl([`http://127.0.0.1:${port}/`])).rejects.toThrow();

    demo.child.kill('SIGTERM');
    expect(await exited(demo.child, 20_000)).toBe(0);
    expect(existsSync(dataDir)).toBe(false);
    expect(await readdir(tmp)).toEqual([]);
  });
});
