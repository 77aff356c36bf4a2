/**
 * A real browser on the demo over HTTPS: headless Chromium (new empty profile, kept off every
 * address but loopback, trusting the demo's certificate by its public key) loads the demo page
 * through the DevTools protocol, never from its own cache. Every resource comes over HTTP/2
 * (PerformanceResourceTiming.nextHopProtocol), and on the second load every response's
 * Cache-Status, read from the protocol's network events, is a hit.
 *
 * "Never from its own cache": each load runs in a new browser context, whose cache is empty.
 * DevTools' own switch (Network.setCacheDisabled) also makes Chromium send `Cache-Control:
 * no-cache` with every request, which the edge honours (RFC 9111 §5.2.1.4): with it, every answer
 * is the edge's stored copy revalidated with the origin (`fwd=request; fwd-status=304`), which a
 * third load checks.
 *
 * Skipped, saying why, where Chromium is not installed; required under CI=true (.ci/run installs it).
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { Chromium, chromiumPath, spkiHash } from '../support/chromium.js';
import { freePortPair } from '../support/ports.js';
import { cliBuilt, exited, startCli, stopAll } from '../support/process.js';

const binary = chromiumPath();
const required = process.env['CI'] === 'true';
if (binary === undefined && !required) console.warn('browser check skipped: no chromium (Debian: apt-get install chromium); required under CI=true');

const dirs: string[] = [];
afterAll(async () => {
  await stopAll();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

interface Seen {
  url: string;
  status: number;
  protocol: string | undefined;
  cacheStatus: string | undefined;
}

describe.skipIf(!cliBuilt || (binary === undefined && !required))('the demo page in Chromium over HTTPS (needs dist/ and chromium)', () => {
  it('loads every resource over h2, and every response of the second load is a hit', async () => {
    expect(binary, 'CI=true requires chromium (apt-get install chromium)').toBeDefined();
    const tmp = await mkdtemp(join(tmpdir(), 'anycdn-browser-'));
    dirs.push(tmp);
    const port = await freePortPair();
    const demo = startCli(['demo', '--tls', '--port', String(port)], { TMPDIR: tmp });
    await demo.waitForOutput('Press Ctrl-C to stop.', 45_000);
    const dataDir = /Data folder: +(\S+)/.exec(demo.output())![1]!;
    const pem = await readFile(join(dataDir, 'tls', 'cert.pem'));
    const browser = await Chromium.launch({ trustSpki: spkiHash(pem) });
    try {
      let seen: Seen[] = [];
      browser.on('Network.responseReceived', (params) => {
        const response = params['response'] as { url: string; status: number; protocol?: string; headers: Record<string, string>; fromDiskCache?: boolean; fromServiceWorker?: boolean };
        // The same file used twice on one page (the icon is also an image) is taken from the cache of
        // that load the second time: not a network response.
        if (response.fromDiskCache === true || response.fromServiceWorker === true) return;
        const cacheStatus = Object.entries(response.headers).find(([k]) => k.toLowerCase() === 'cache-status')?.[1];
        seen.push({ url: response.url, status: response.status, protocol: response.protocol, cacheStatus });
      });
      const page = `https://127.0.0.1:${port}/`;
      /** Loads the page in a new browser context (an empty cache of its own); returns the tab's session. */
      const load = async (options: { cacheDisabled?: boolean } = {}): Promise<string> => {
        const { browserContextId } = (await browser.send('Target.createBrowserContext')) as { browserContextId: string };
        const { targetId } = (await browser.send('Target.createTarget', { url: 'about:blank', browserContextId })) as { targetId: string };
        const { sessionId } = (await browser.send('Target.attachToTarget', { targetId, flatten: true })) as { sessionId: string };
        await browser.send('Network.enable', {}, sessionId);
        if (options.cacheDisabled === true) await browser.send('Network.setCacheDisabled', { cacheDisabled: true }, sessionId);
        await browser.send('Page.enable', {}, sessionId);
        const loaded = browser.once('Page.loadEventFired', sessionId, 60_000);
        await browser.send('Page.navigate', { url: page }, sessionId);
        await loaded;
        // Late requests (an icon) settle.
        await new Promise((r) => setTimeout(r, 500));
        return sessionId;
      };

      const first = await load();
      const timing = (await browser.send('Runtime.evaluate', { expression: "JSON.stringify(performance.getEntriesByType('navigation').concat(performance.getEntriesByType('resource')).map((e) => [e.name, e.nextHopProtocol]))", returnByValue: true }, first)) as { result: { value: string } };
      const protocols = JSON.parse(timing.result.value) as [string, string][];
      expect(protocols.map(([url]) => new URL(url).pathname)).toEqual(expect.arrayContaining(['/', '/css/site.css', '/photos/landscape.jpg', '/photos/logo.png', '/icons/check.svg']));
      for (const [url, protocol] of protocols) expect([url, protocol]).toEqual([url, 'h2']);
      expect(seen.length).toBeGreaterThanOrEqual(5);
      for (const r of seen) expect([r.url, r.status, r.protocol]).toEqual([r.url, 200, 'h2']);

      seen = [];
      await load();
      expect(seen.map((r) => new URL(r.url).pathname)).toEqual(expect.arrayContaining(['/', '/css/site.css', '/photos/landscape.jpg', '/photos/logo.png', '/icons/check.svg']));
      for (const r of seen) expect([r.url, r.protocol, r.cacheStatus]).toEqual([r.url, 'h2', expect.stringMatching(/^anycdn; hit; ttl=\d+$/)]);

      seen = [];
      await load({ cacheDisabled: true });
      expect(seen.length).toBeGreaterThanOrEqual(5);
      for (const r of seen) expect([r.url, r.status, r.cacheStatus]).toEqual([r.url, 200, 'anycdn; fwd=request; fwd-status=304']);
    } finally {
      await browser.close();
      demo.child.kill('SIGTERM');
      await exited(demo.child, 20_000);
    }
  });
});
