import { describe, expect, it } from 'vitest';
import { requestUrl } from '../../../edge/app.js';
import { controlPathOf } from '../../../edge/control-path.js';
import { Upstream } from '../../../edge/upstream.js';

const of = (target: string): string | undefined => controlPathOf(target, { get url() { return requestUrl(target, 'cdn.example'); } });

describe('controlPathOf', () => {
  it.each([
    ['/_cdn/healthz', '/_cdn/healthz'],
    ['/_cdn/metrics?x=1', '/_cdn/metrics'],
    ['/_cdn', '/_cdn'],
    ['/x/../_cdn/metrics', '/_cdn/metrics'],
    ['/./_cdn/metrics', '/_cdn/metrics'],
    ['/%2e%2e/_cdn/assets/a', '/_cdn/assets/a'],
    ['/%5Fcdn/purge', '/_cdn/purge'],
    ['//_cdn/metrics', '/_cdn/metrics'],
    ['/x\\..\\_cdn\\healthz', '/_cdn/healthz'],
    ['http://other.example/_cdn/metrics', '/_cdn/metrics'],
  ])('%s is the control path %s', (target, path) => {
    expect(of(target)).toBe(path);
  });

  it.each([['/a.css'], ['/_cdnx/a'], ['/x/_cdn/a'], ['/a/./b'], ['/%41.css'], ['/_CDN/metrics'], ['http://other.example/a'], ['*']])('%s is content (or for the pipeline to refuse)', (target) => {
    expect(of(target)).toBeUndefined();
  });

  it('is refused by the upstream client too, whoever calls it', async () => {
    const upstream = new Upstream('http://127.0.0.1:9', { connectMs: 100, headersMs: 100, bodyIdleMs: 100 }, Date.now);
    try {
      for (const path of ['/_cdn/assets/a', '/x/../_cdn/purge', '/%5fcdn/metrics']) {
        await expect(upstream.request({ method: 'PUT', path, headers: {} })).rejects.toMatchObject({ code: 'not_found', status: 404 });
      }
    } finally {
      await upstream.destroy();
    }
  });
});
