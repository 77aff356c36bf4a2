/**
 * Starting the CLI's servers as an operator does, including when it cannot work: a port in use is
 * one clear line and an exit, never a stack trace or a process that hangs on; the demo keeps
 * what a user uploaded into its data folder across restarts.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { cliBuilt, exited, startCli, stopAll } from '../../support/process.js';
import { freePortPair } from '../../support/ports.js';

const dirs: string[] = [];
const servers: Server[] = [];
afterAll(async () => {
  await stopAll();
  for (const s of servers) s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-cli-'));
  dirs.push(dir);
  return dir;
}

/** A loopback port held by a plain TCP server for the rest of the file. */
async function busyPort(): Promise<number> {
  const server = createServer();
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

/** Whether something accepts connections on the port. */
async function listening(port: number): Promise<boolean> {
  const probe = createServer();
  return new Promise((resolve) => {
    probe.once('error', () => resolve(true));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(false)));
  });
}

describe.skipIf(!cliBuilt)('CLI start-up (needs dist/, built by npm test)', () => {
  it('names an unknown command, even one named like an object property, and exits 2', async () => {
    for (const name of ['serve', 'constructor', '__proto__']) {
      const cli = startCli([name]);
      expect(await exited(cli.child, 20_000)).toBe(2);
      expect(cli.output()).toContain(`anycdn: unknown command "${name}"`);
    }
  });

  it('says in one line that the edge port is in use, and exits 1', async () => {
    const port = await busyPort();
    const dir = await tempDir();
    const config = join(dir, 'edge.yaml');
    await writeFile(config, `listen: 127.0.0.1:${port}\nupstream: http://127.0.0.1:9\npop: t\nnode: t1\ncacheDir: ${join(dir, 'cache')}\n`);
    const edge = startCli(['edge', '--config', config]);
    expect(await exited(edge.child, 20_000)).toBe(1);
    expect(edge.output()).toContain(`anycdn: listen EADDRINUSE: address already in use 127.0.0.1:${port}`);
    expect(edge.output()).not.toMatch(/^\s+at /m);
  });

  it.skipIf(!existsSync('/proc/self'))('says in one line that the cache folder cannot be made, and exits 1 (under /proc too)', async () => {
    const dir = await tempDir();
    const config = join(dir, 'edge.yaml');
    await writeFile(config, `listen: 127.0.0.1:0\nupstream: http://127.0.0.1:9\npop: t\nnode: t1\ncacheDir: /proc/anycdn-not-a-folder/cache\n`);
    const edge = startCli(['edge', '--config', config]);
    expect(await exited(edge.child, 20_000)).toBe(1);
    expect(edge.output()).toContain('anycdn: cannot open the blob store in /proc/anycdn-not-a-folder/cache (ENOENT)');
    expect(edge.output()).not.toMatch(/^\s+at /m);
  });

  it('stops the demo (origin included) when the edge port is in use, instead of running on', async () => {
    const port = await freePortPair();
    servers.push(createServer());
    await new Promise<void>((r) => servers.at(-1)!.listen(port, '127.0.0.1', r));
    const demo = startCli(['demo', '--port', String(port), '--data', await tempDir()]);
    expect(await exited(demo.child, 45_000)).toBe(1);
    expect(demo.output()).toContain('EADDRINUSE');
    expect(demo.output()).not.toMatch(/^\s+at /m);
    expect(await listening(port + 1)).toBe(false);
  });

  it('removes the data folder it made when the demo cannot start (origin port in use)', async () => {
    const port = await freePortPair();
    servers.push(createServer());
    await new Promise<void>((r) => servers.at(-1)!.listen(port + 1, '127.0.0.1', r));
    const tmp = await tempDir();
    const demo = startCli(['demo', '--port', String(port)], { TMPDIR: tmp });
    expect(await exited(demo.child, 45_000)).toBe(1);
    expect(demo.output()).toContain('EADDRINUSE');
    expect(await readdir(tmp)).toEqual([]);
  });

  it('refuses a second origin on a data folder in use, in one line, leaving the first one serving', async () => {
    const dir = await tempDir();
    const token = 'cli-test-publish-token-0123456789';
    const config = (port: number): string => `listen: 127.0.0.1:${port}\ndataDir: ${join(dir, 'data')}\npublishToken: { env: ANYCDN_PUBLISH_TOKEN }\npurgeToken: { env: ANYCDN_PUBLISH_TOKEN }\n`;
    await writeFile(join(dir, 'first.yaml'), config(0));
    const first = startCli(['origin', '--config', join(dir, 'first.yaml')], { ANYCDN_PUBLISH_TOKEN: token });
    const up = await first.waitForLog('origin listening', 30_000);
    await writeFile(join(dir, 'second.yaml'), config(0));
    const second = startCli(['origin', '--config', join(dir, 'second.yaml')], { ANYCDN_PUBLISH_TOKEN: token });
    expect(await exited(second.child, 20_000)).toBe(1);
    expect(second.output()).toContain(`${join(dir, 'data')} is in use by process ${first.pid}`);
    expect(second.output()).not.toMatch(/^\s+at /m);
    const res = await request(`${String(up['url'])}/_cdn/healthz`);
    expect(res.statusCode).toBe(200);
    await res.body.dump();
    first.child.kill('SIGTERM');
    expect(await exited(first.child, 20_000)).toBe(0);
  });

  it('drains an origin on SIGTERM for its drain period: health says 503 and connections close, then it exits', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'origin.yaml'), `listen: 127.0.0.1:0\ndataDir: ${join(dir, 'data')}\npublishToken: { env: ANYCDN_PUBLISH_TOKEN }\npurgeToken: { env: ANYCDN_PUBLISH_TOKEN }\ndrain: 2s\n`);
    const origin = startCli(['origin', '--config', join(dir, 'origin.yaml')], { ANYCDN_PUBLISH_TOKEN: 'cli-test-publish-token-0123456789' });
    const url = String((await origin.waitForLog('origin listening', 30_000))['url']);
    origin.child.kill('SIGTERM');
    await origin.waitForLog('shutting down', 10_000);
    const health = await request(`${url}/_cdn/healthz`);
    expect(health.statusCode).toBe(503);
    expect(health.headers['connection']).toBe('close');
    await health.body.dump();
    const content = await request(`${url}/missing.txt`);
    expect([content.statusCode, content.headers['connection']]).toEqual([404, 'close']);
    await content.body.dump();
    expect(await exited(origin.child, 20_000)).toBe(0);
  });

  it('serves a demo page through the edge whose every resource loads, negotiated, and is a hit the second time', async () => {
    const port = await freePortPair();
    const demo = startCli(['demo', '--port', String(port)], { TMPDIR: await tempDir() });
    for (let i = 0; i < 450 && !demo.output().includes('anycdn demo is running'); i++) await new Promise((r) => setTimeout(r, 100));
    const edge = `http://127.0.0.1:${port}`;
    // The first URL printed is the edge's own, and opening it shows the demo page (the root's index.html).
    expect(/https?:\/\/\S+/.exec(demo.output())?.[0]).toBe(edge);
    expect(demo.output()).toContain(`Open the demo page:   ${edge}/\n`);
    const page = await request(`${edge}/`);
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toBe('text/html; charset=utf-8');
    const html = await page.body.text();
    expect(html).toContain('<title>anycdn demo</title>');
    // Every URL the page loads: src, each srcset candidate, the stylesheet and the icon.
    const urls = new Set<string>();
    for (const [, attr, value] of html.matchAll(/\b(src|srcset|href)="([^"]+)"/g)) {
      for (const candidate of attr === 'srcset' ? value!.split(',').map((c) => c.trim().split(' ')[0]!) : [value!]) urls.add(candidate.replaceAll('&amp;', '&'));
    }
    expect([...urls].filter((u) => u.includes('fmt=auto')).length).toBeGreaterThanOrEqual(6);
    const accept = 'image/avif,image/webp,image/apng,*/*;q=0.8'; // Chromium's, for images
    for (const round of ['miss', 'hit']) {
      for (const url of urls) {
        const res = await request(`${edge}${url}`, { headers: { accept } });
        const type = String(res.headers['content-type']);
        await res.body.dump();
        expect([url, res.statusCode]).toEqual([url, 200]);
        if (url.includes('fmt=auto')) expect([url, type]).toEqual([url, 'image/avif']);
        if (round === 'hit') expect([url, String(res.headers['cache-status'])]).toEqual([url, expect.stringMatching(/^anycdn; hit/)]);
      }
    }
    demo.child.kill('SIGINT');
    expect(await exited(demo.child, 20_000)).toBe(0);
  });

  it('keeps a file uploaded into the demo over a sample when started again on the same data', async () => {
    const data = await tempDir();
    const token = 'cli-test-publish-token-0123456789';
    const env = { ANYCDN_PUBLISH_TOKEN: token };
    const port = await freePortPair();
    const origin = `http://127.0.0.1:${port + 1}`;
    const waitUntilUp = async (output: () => string): Promise<void> => {
      for (let i = 0; i < 450 && !output().includes('anycdn demo is running'); i++) await new Promise((r) => setTimeout(r, 100));
      expect(output()).toContain('anycdn demo is running');
    };

    const first = startCli(['demo', '--port', String(port), '--data', data], env);
    await waitUntilUp(first.output);
    const put = await request(`${origin}/_cdn/assets/photos/landscape.jpg`, { method: 'PUT', headers: { authorization: `Bearer ${token}` }, body: 'mine, not the sample' });
    expect(put.statusCode).toBeLessThan(300);
    await put.body.dump();
    first.child.kill('SIGINT');
    expect(await exited(first.child, 20_000)).toBe(0);

    const second = startCli(['demo', '--port', String(port), '--data', data], env);
    await waitUntilUp(second.output);
    const res = await request(`${origin}/photos/landscape.jpg`);
    expect(await res.body.text()).toBe('mine, not the sample');
    second.child.kill('SIGINT');
    expect(await exited(second.child, 20_000)).toBe(0);
  });
});
