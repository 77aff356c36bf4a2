/**
 * The edge's upstream client loads undici's pool code at its first request, not at start
 * (edge/undici-parts.ts): a process that answers from its cache does not pay for it before its
 * first answer. Run in a process of its own, from dist/ (this one has loaded undici already).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const UPSTREAM = fileURLToPath(new URL('../../../dist/edge/upstream.js', import.meta.url));
const built = existsSync(UPSTREAM);

describe.skipIf(!built)('the upstream client (needs dist/, built by npm test)', () => {
  it('loads the pool code at its first request, which fails as clearly as ever', () => {
    const script = `
      import { createRequire } from 'node:module';
      const { Upstream } = await import(${JSON.stringify(UPSTREAM)});
      const require = createRequire(${JSON.stringify(UPSTREAM)});
      const pool = require.resolve('undici/lib/dispatcher/pool.js');
      const loaded = () => pool in require.cache;
      // Port 9 on loopback: nothing listens, the connection is refused.
      const upstream = new Upstream('http://127.0.0.1:9', { connectMs: 2000, headersMs: 2000, bodyIdleMs: 2000 }, Date.now);
      const atStart = loaded();
      const failed = await upstream.request({ method: 'GET', path: '/a.txt', headers: {} }).catch((err) => err);
      console.log(JSON.stringify({ atStart, afterRequest: loaded(), code: failed.code, status: failed.status }));
      await upstream.destroy();
    `;
    const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
    expect(out.stderr).toBe('');
    expect(JSON.parse(out.stdout)).toEqual({ atStart: false, afterRequest: true, code: 'upstream_unreachable', status: 502 });
  });
});
