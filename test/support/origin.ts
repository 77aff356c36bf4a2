/**
 * Starting a real origin on a loopback port (port 0) over a fresh temporary data folder, for
 * integration tests. Everything it starts is stopped and removed by `stop()`.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { request } from 'undici';
import { validateConfig } from '../../src/config/load.js';
import { silentLogger } from '../../src/log.js';
import { originConfigSchema } from '../../origin/config.js';
import { startOrigin, type OriginServer } from '../../origin/server.js';

export const PUBLISH_TOKEN = 'publish-token-for-tests-0123456789';
export const PURGE_TOKEN = 'purge-token-for-tests-0123456789';

export interface TestOrigin {
  url: string;
  dataDir: string;
  server: OriginServer;
  put(path: string, body: Buffer | string, headers?: Record<string, string>): Promise<{ status: number; json: Record<string, unknown> }>;
  stop(): Promise<void>;
}

export async function startTestOrigin(overrides: Record<string, unknown> = {}, now?: () => number): Promise<TestOrigin> {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-origin-test-'));
  const config = validateConfig(
    originConfigSchema,
    { listen: '127.0.0.1:0', dataDir: join(dir, 'data'), publishToken: PUBLISH_TOKEN, purgeToken: PURGE_TOKEN, logLevel: 'silent', accessLog: false, ...overrides },
    'test settings',
    {},
  );
  const server = await startOrigin(config, silentLogger(), { processMetrics: false, now });
  return {
    url: server.url,
    dataDir: config.dataDir,
    server,
    async put(path, body, headers = {}) {
      const res = await request(`${server.url}/_cdn/assets/${path}`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${PUBLISH_TOKEN}`, ...headers },
        body,
      });
      return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
    },
    async stop() {
      await server.close(1_000);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
