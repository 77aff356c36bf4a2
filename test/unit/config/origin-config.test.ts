import { describe, expect, it } from 'vitest';
import { parseDuration, parseListen, parseSize } from '../../../src/config/common.js';
import { validateConfig } from '../../../src/config/load.js';
import { parseConfigText } from '../../support/config-text.js';
import { CdnError } from '../../../src/errors.js';
import { originConfigSchema } from '../../../origin/config.js';

const base = { dataDir: '/srv/anycdn', publishToken: 'p'.repeat(16), purgeToken: 'q'.repeat(16) };

function errorOf(raw: unknown, env: Record<string, string> = {}): CdnError {
  try {
    validateConfig(originConfigSchema, raw, 'origin.yaml', env);
  } catch (err) {
    if (err instanceof CdnError) return err;
    throw err;
  }
  throw new Error('expected a config error');
}

describe('origin config', () => {
  it('fills defaults and freezes the result', () => {
    const c = validateConfig(originConfigSchema, base, 'origin.yaml', {});
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8081 });
    expect(c.maxUploadBytes).toBe(100 * 1024 * 1024);
    expect(c.images.maxInputPixels).toBe(50_000_000);
    expect(c.images.maxOutputDimension).toBe(8192);
    expect(c.images.quality).toEqual({ jpeg: 80, webp: 80, avif: 50 });
    expect(c.images.sourceCacheSize).toBe(64 * 1024 * 1024);
    expect(c.timeouts.clientIdle).toBe(60_000);
    expect(c.edgeToken).toBeUndefined();
    expect(c.purge).toEqual({ maxEntries: 1000, maxWait: 30_000, maxStreams: 256, heartbeat: 15_000, retainEntries: 100_000, retainBytes: 64 * 1024 * 1024 });
    // A short idle bound brings the purge wait and heartbeat under it by itself.
    const short = validateConfig(originConfigSchema, { ...base, timeouts: { clientIdle: '500ms' }, images: { transformTimeout: '200ms' } }, 'origin.yaml', {});
    expect([short.purge.maxWait, short.purge.heartbeat]).toEqual([250, 125]);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.images)).toBe(true);
  });

  it('reads secrets from named environment variables', () => {
    const c = validateConfig(originConfigSchema, { ...base, publishToken: { env: 'PUB' } }, 'origin.yaml', { PUB: 'z'.repeat(20) });
    expect(c.publishToken).toBe('z'.repeat(20));
  });

  it.each([
    [{ ...base, publishToken: { env: 'MISSING' } }, 'publishToken', 'origin.yaml: publishToken: environment variable MISSING is not set'],
    [{ ...base, publishToken: 'short' }, 'publishToken', 'origin.yaml: publishToken: a token must be at least 16 characters'],
    [{ ...base, purgeToken: undefined }, 'purgeToken', 'origin.yaml: purgeToken: required: a string, or { env: VARIABLE_NAME }'],
    [{ ...base, purgeToken: 42 }, 'purgeToken', 'origin.yaml: purgeToken: expected a string, or { env: VARIABLE_NAME }'],
    [{ ...base, images: { bogus: 1 } }, 'images.bogus', 'origin.yaml: images.bogus: unknown key'],
    [{ ...base, colour: 'red' }, 'colour', 'origin.yaml: colour: unknown key'],
    [{ ...base, listen: 'nowhere' }, 'listen', 'origin.yaml: listen: expected "host:port" or a port number, got "nowhere"'],
    [{ ...base, maxUploadBytes: '10 parsecs' }, 'maxUploadBytes', 'origin.yaml: maxUploadBytes: expected a byte size such as 1048576 or "64MiB", got "10 parsecs"'],
    [{ ...base, images: { quality: { jpeg: 101 } } }, 'images.quality.jpeg', 'origin.yaml: images.quality.jpeg: Too big: expected number to be <=100'],
    [{ ...base, timeouts: { clientIdle: '30s' } }, 'timeouts.clientIdle', 'origin.yaml: timeouts.clientIdle: must be longer than images.transformTimeout (30000 ms)'],
    [{ ...base, timeouts: { clientIdle: '2m' }, images: { transformTimeout: '5m' } }, 'timeouts.clientIdle', 'origin.yaml: timeouts.clientIdle: must be longer than images.transformTimeout (300000 ms)'],
    [{ ...base, edgeToken: 'p'.repeat(16) }, 'edgeToken', 'origin.yaml: edgeToken: must differ from publishToken and purgeToken'],
    [{ ...base, edgeToken: 'q'.repeat(16) }, 'edgeToken', 'origin.yaml: edgeToken: must differ from publishToken and purgeToken'],
    [{ ...base, edgeToken: 'short' }, 'edgeToken', 'origin.yaml: edgeToken: a token must be at least 16 characters'],
    [{ ...base, purge: { maxWait: '60s' } }, 'purge.maxWait', 'origin.yaml: purge.maxWait: must be shorter than timeouts.clientIdle (60000 ms)'],
    [{ ...base, purge: { heartbeat: '25s' } }, 'purge.heartbeat', 'origin.yaml: purge.heartbeat: must be from 100 ms to a third of timeouts.clientIdle (60000 ms)'],
    [{ ...base, purge: { heartbeat: 50 } }, 'purge.heartbeat', 'origin.yaml: purge.heartbeat: must be from 100 ms to a third of timeouts.clientIdle (60000 ms)'],
    [{ ...base, purge: { maxEntries: 0 } }, 'purge.maxEntries', 'origin.yaml: purge.maxEntries: Too small: expected number to be >=1'],
    [{ ...base, purge: { retainBytes: '2GiB' } }, 'purge.retainBytes', 'origin.yaml: purge.retainBytes: must be at most 1GiB'],
    [{ ...base, purge: { retain: 5 } }, 'purge.retain', 'origin.yaml: purge.retain: unknown key'],
    [{ ...base, timeouts: { clientIdle: '2m' }, images: { transformTimeout: '2m' } }, 'timeouts.clientIdle', 'origin.yaml: timeouts.clientIdle: must be longer than images.transformTimeout (120000 ms)'],
    [{ ...base, timeouts: { clientIdle: 'soon' } }, 'timeouts.clientIdle', 'origin.yaml: timeouts.clientIdle: expected a duration such as 5000 or "5s", got "soon"'],
  ])('rejects %j naming %s', (raw, field, message) => {
    const err = errorOf(raw);
    expect(err.code).toBe('invalid_config');
    expect(err.field).toBe(field);
    expect(err.message).toBe(message);
  });

  // A transform runs with nothing sent on its connection: the default idle bound outlasts it.
  it.each([
    [{}, 60_000],
    [{ images: { transformTimeout: '10s' } }, 60_000],
    [{ images: { transformTimeout: '30s' } }, 60_000],
    [{ images: { transformTimeout: '2m' } }, 240_000],
    [{ images: { transformTimeout: '2m' }, timeouts: { clientIdle: '121s' } }, 121_000],
    [{ timeouts: { clientIdle: '31s' } }, 31_000],
  ])('sets timeouts.clientIdle for %j to %d ms', (raw, want) => {
    expect(validateConfig(originConfigSchema, { ...base, ...raw }, 'origin.yaml', {}).timeouts.clientIdle).toBe(want);
  });

  it('names the missing required field', () => {
    const err = errorOf({ publishToken: 'p'.repeat(16), purgeToken: 'q'.repeat(16) });
    expect(err.field).toBe('dataDir');
    expect(err.message.startsWith('origin.yaml: dataDir: ')).toBe(true);
  });

  it('parses YAML and JSON and names the file on syntax errors', () => {
    expect(parseConfigText('a.yaml', 'dataDir: /x\nimages:\n  avif: false\n')).toEqual({ dataDir: '/x', images: { avif: false } });
    expect(parseConfigText('a.json', '{"dataDir":"/x"}')).toEqual({ dataDir: '/x' });
    expect(() => parseConfigText('a.json', '{')).toThrow(/^a\.json: cannot parse: /);
  });
});

describe('config value syntax', () => {
  it.each([
    ['1024', 1024],
    ['64KiB', 65536],
    ['1.5 MB', 1_500_000],
    ['2GiB', 2 * 1024 ** 3],
    [512, 512],
    ['12 parsecs', undefined],
    ['-1', undefined],
  ])('size %j → %j', (v, want) => expect(parseSize(v)).toBe(want));

  it.each([
    ['250ms', 250],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    [1500, 1500],
    ['5', undefined],
    ['soon', undefined],
  ])('duration %j → %j', (v, want) => expect(parseDuration(v)).toBe(want));

  it.each([
    ['127.0.0.1:8080', { host: '127.0.0.1', port: 8080 }],
    ['[::1]:9000', { host: '::1', port: 9000 }],
    ['0.0.0.0:80', { host: '0.0.0.0', port: 80 }],
    ['8080', { host: '127.0.0.1', port: 8080 }],
    [0, { host: '127.0.0.1', port: 0 }],
    ['host:99999', undefined],
    ['::1:80', undefined],
  ])('listen %j → %j', (v, want) => expect(parseListen(v)).toEqual(want));
});
