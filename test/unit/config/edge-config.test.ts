import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { CdnError } from '../../../src/errors.js';
import { edgeConfigSchema } from '../../../edge/config.js';

const base = { upstream: 'http://127.0.0.1:8081', pop: 'ams', node: 'ams-1', cacheDir: '/var/cache/anycdn' };

describe('edge config', () => {
  it('fills bounded defaults', () => {
    const c = validateConfig(edgeConfigSchema, base, 'edge.yaml', {});
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.memory).toEqual({ maxBytes: 256 * 1024 ** 2, maxEntrySize: 1024 ** 2 });
    expect(c.disk).toEqual({ maxBytes: 10 * 1024 ** 3, maxEntrySize: 1024 ** 3 });
    expect(c.timeouts).toEqual({ connect: 3_000, headers: 15_000, bodyIdle: 15_000, clientIdle: 60_000 });
    expect(c.grace).toBe(3_600_000);
    expect(c.negativeTtl).toBe(10_000);
    expect(c.adminToken).toBeUndefined();
  });

  it('strips a trailing slash from the upstream', () => {
    expect(validateConfig(edgeConfigSchema, { ...base, upstream: 'http://origin.internal:8081/' }, 'edge.yaml', {}).upstream).toBe('http://origin.internal:8081');
  });

  it.each([
    [{ ...base, upstream: 'ftp://x' }, 'upstream'],
    [{ ...base, upstream: 'not a url' }, 'upstream'],
    [{ ...base, pop: 'ams 1' }, 'pop'],
    [{ ...base, disk: { maxBytes: 'lots' } }, 'disk.maxBytes'],
    [{ ...base, timeouts: { headers: '5 minutes' } }, 'timeouts.headers'],
    [{ ...base, cache: {} }, 'cache'],
    [{ upstream: base.upstream, pop: 'ams', node: 'ams-1' }, 'cacheDir'],
  ])('rejects %j naming %s', (raw, field) => {
    try {
      validateConfig(edgeConfigSchema, raw, 'edge.yaml', {});
      throw new Error('expected a config error');
    } catch (err) {
      expect(err).toBeInstanceOf(CdnError);
      expect((err as CdnError).field).toBe(field);
      expect((err as CdnError).message.startsWith(`edge.yaml: ${field}: `)).toBe(true);
    }
  });
});
