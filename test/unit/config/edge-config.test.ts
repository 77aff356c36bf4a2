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
    expect(c.edgeToken).toBeUndefined();
    expect(c.purgeFrom).toBeUndefined();
    expect(c.purge).toEqual({ catchUpTimeout: 3_000, maxEntries: 1000 });
  });

  it('takes the purge stream\'s keys, the token from the environment', () => {
    const c = validateConfig(edgeConfigSchema, { ...base, edgeToken: { env: 'EDGE_TOKEN' }, purgeFrom: 'https://origin.example:8081/', purge: { catchUpTimeout: '5s' } }, 'edge.yaml', { EDGE_TOKEN: 'e'.repeat(24) });
    expect([c.edgeToken, c.purgeFrom, c.purge.catchUpTimeout]).toEqual(['e'.repeat(24), 'https://origin.example:8081', 5_000]);
  });

  // A tier's maxEntrySize left out follows a smaller budget; set above the budget, it is refused.
  it.each([
    [{ disk: { maxBytes: '200MiB' } }, 'disk', { maxBytes: 200 * 1024 ** 2, maxEntrySize: 200 * 1024 ** 2 }],
    [{ disk: { maxBytes: '2GiB' } }, 'disk', { maxBytes: 2 * 1024 ** 3, maxEntrySize: 1024 ** 3 }],
    [{ disk: { maxBytes: '200MiB', maxEntrySize: '200MiB' } }, 'disk', { maxBytes: 200 * 1024 ** 2, maxEntrySize: 200 * 1024 ** 2 }],
    [{ disk: { maxEntrySize: '20GiB', maxBytes: '40GiB' } }, 'disk', { maxBytes: 40 * 1024 ** 3, maxEntrySize: 20 * 1024 ** 3 }],
    [{ memory: { maxBytes: '512KiB' } }, 'memory', { maxBytes: 512 * 1024, maxEntrySize: 512 * 1024 }],
    [{ memory: { maxEntrySize: '64KiB' } }, 'memory', { maxBytes: 256 * 1024 ** 2, maxEntrySize: 64 * 1024 }],
  ])('sizes a tier from %j', (tiers, tier, want) => {
    const c = validateConfig(edgeConfigSchema, { ...base, ...tiers }, 'edge.yaml', {});
    expect(c[tier as 'memory' | 'disk']).toEqual(want);
  });

  it.each([
    [{ ...base, disk: { maxBytes: '200MiB', maxEntrySize: '1GiB' } }, 'disk.maxEntrySize', 'edge.yaml: disk.maxEntrySize: must not exceed disk.maxBytes (209715200 bytes)'],
    [{ ...base, disk: { maxEntrySize: '11GiB' } }, 'disk.maxEntrySize', 'edge.yaml: disk.maxEntrySize: must not exceed disk.maxBytes (10737418240 bytes)'],
    [{ ...base, memory: { maxBytes: '1MiB', maxEntrySize: '2MiB' } }, 'memory.maxEntrySize', 'edge.yaml: memory.maxEntrySize: must not exceed memory.maxBytes (1048576 bytes)'],
    [{ ...base, disk: { maxBytes: 0 } }, 'disk.maxBytes', 'edge.yaml: disk.maxBytes: Too small: expected number to be >0'],
    [{ ...base, disk: { maxEntrySize: '0MiB' } }, 'disk.maxEntrySize', 'edge.yaml: disk.maxEntrySize: Too small: expected number to be >0'],
    [{ ...base, memory: { maxBytes: '0' } }, 'memory.maxBytes', 'edge.yaml: memory.maxBytes: Too small: expected number to be >0'],
    [{ ...base, memory: { maxEntrySize: 0 } }, 'memory.maxEntrySize', 'edge.yaml: memory.maxEntrySize: Too small: expected number to be >0'],
    [{ ...base, memory: { maxEntrySize: 'big' } }, 'memory.maxEntrySize', 'edge.yaml: memory.maxEntrySize: expected a byte size such as 1048576 or "64MiB", got "big"'],
    [{ ...base, disk: { maxBytes: '1GiB', size: 1 } }, 'disk.size', 'edge.yaml: disk.size: unknown key'],
    [{ ...base, edgeToken: 'short' }, 'edgeToken', 'edge.yaml: edgeToken: a token must be at least 16 characters'],
    [{ ...base, purgeFrom: 'ftp://origin' }, 'purgeFrom', 'edge.yaml: purgeFrom: expected an http:// or https:// URL'],
    [{ ...base, purge: { catchUpTimeout: '2m' } }, 'purge.catchUpTimeout', 'edge.yaml: purge.catchUpTimeout: at most 60s'],
    [{ ...base, purge: { every: 1 } }, 'purge.every', 'edge.yaml: purge.every: unknown key'],
  ])('rejects %j with the file and the field: %s', (raw, field, message) => {
    try {
      validateConfig(edgeConfigSchema, raw, 'edge.yaml', {});
      throw new Error('expected a config error');
    } catch (err) {
      expect(err).toBeInstanceOf(CdnError);
      expect([(err as CdnError).code, (err as CdnError).field, (err as CdnError).message]).toEqual(['invalid_config', field, message]);
    }
  });

  // A cluster's primary sends its workers the config it validated, as JSON (edge/cluster.ts).
  it('is plain data, the same after a trip through JSON', () => {
    const full = {
      ...base,
      listen: '0.0.0.0:80',
      workers: 4,
      tls: { listen: 443, certificates: [{ cert: '/etc/anycdn/a.pem', key: '/etc/anycdn/a.key' }], ticketKeyFile: '/etc/anycdn/tickets', redirectHttp: true },
      upstreamTls: { ca: ['/etc/anycdn/ca.pem'], servername: 'origin.example', cert: '/etc/anycdn/client.pem', key: '/etc/anycdn/client.key' },
      memory: { maxBytes: '1GiB', maxEntrySize: '4MiB' },
      disk: { maxBytes: '2048GiB' },
      timeouts: { connect: '2s', headers: '30s' },
      heuristic: { fraction: 0.05 },
      adminToken: { env: 'ADMIN' },
      edgeToken: 'e'.repeat(24),
      purgeFrom: 'https://origin.example/',
      accessLog: { path: '/var/log/anycdn/access.log', format: 'combined', sample: 0.5, flushInterval: '250ms' },
    };
    const c = validateConfig(edgeConfigSchema, full, 'edge.yaml', { ADMIN: 'a'.repeat(24) });
    const sent = JSON.parse(JSON.stringify(c)) as unknown;
    // Nothing is lost or changed on the way: every value is a string, a finite number, a boolean, an array or a plain object.
    const plain = (v: unknown): boolean =>
      typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) || (Array.isArray(v) ? v.every(plain) : v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype && Object.values(v).every((x) => x === undefined || plain(x)));
    expect(plain(c)).toBe(true);
    expect(sent).toEqual(c);
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
