import { describe, expect, it } from 'vitest';
import { lifecycleLogStream } from '../../../src/log.js';
import { validateConfig } from '../../../src/config/load.js';
import { CdnError } from '../../../src/errors.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { originConfigSchema } from '../../../origin/config.js';

const edge = { upstream: 'http://127.0.0.1:8081', pop: 'ams', node: 'ams-1', cacheDir: '/var/cache/anycdn' };
const origin = { dataDir: '/var/lib/anycdn', publishToken: 'p'.repeat(32), purgeToken: 'q'.repeat(32) };

describe.each([
  ['edge', edgeConfigSchema, edge],
  ['origin', originConfigSchema, origin],
] as const)('accessLog in the %s config', (_name, schema, base) => {
  const parse = (accessLog: unknown) => validateConfig(schema as typeof edgeConfigSchema, { ...base, accessLog }, 'x.yaml', {}).accessLog;

  it('is on by default: JSON lines on stdout, every request, 4 MiB of buffer, written within a second', () => {
    expect(validateConfig(schema as typeof edgeConfigSchema, base, 'x.yaml', {}).accessLog).toEqual({ enabled: true, path: 'stdout', format: 'json', sample: 1, maxBufferBytes: 4 * 1024 * 1024, flushInterval: 1000 });
  });

  it('is off with false, and takes a file, the combined format, a sample, sizes and durations with units', () => {
    expect(parse(false).enabled).toBe(false);
    expect(parse({ path: '/var/log/anycdn/access.log', format: 'combined', sample: 0.25, maxBufferBytes: '16MiB', flushInterval: '250ms' })).toEqual({
      enabled: true,
      path: '/var/log/anycdn/access.log',
      format: 'combined',
      sample: 0.25,
      maxBufferBytes: 16 * 1024 * 1024,
      flushInterval: 250,
    });
  });

  it.each([
    [{ format: 'clf' }, 'accessLog.format'],
    [{ sample: 1.5 }, 'accessLog.sample'],
    [{ sample: -0.1 }, 'accessLog.sample'],
    [{ maxBufferBytes: '1KiB' }, 'accessLog.maxBufferBytes'],
    [{ maxBufferBytes: '2GiB' }, 'accessLog.maxBufferBytes'],
    [{ flushInterval: '5m' }, 'accessLog.flushInterval'],
    [{ path: '' }, 'accessLog.path'],
    [{ file: '/tmp/a.log' }, 'accessLog.file'],
    ['/var/log/access.log', 'accessLog'],
  ])('refuses %j naming %s', (accessLog, field) => {
    try {
      parse(accessLog);
      throw new Error('expected a config error');
    } catch (err) {
      expect(err).toBeInstanceOf(CdnError);
      expect((err as CdnError).field).toBe(field);
      expect((err as CdnError).message.startsWith(`x.yaml: ${field}: `)).toBe(true);
    }
  });

  it('names what it expects when accessLog is not false or an object', () => {
    expect(() => parse('/var/log/access.log')).toThrow('x.yaml: accessLog: expected false, or an object with path, format, sample, maxBufferBytes, flushInterval');
  });
});

describe('lifecycleLogStream', () => {
  const settings = { enabled: true, path: 'stdout', format: 'json', sample: 1, maxBufferBytes: 1 << 22, flushInterval: 1000 } as const;
  it('moves the lifecycle log to stderr only when combined access lines take stdout', () => {
    expect(lifecycleLogStream(settings)).toBe('stdout');
    expect(lifecycleLogStream({ ...settings, format: 'combined' })).toBe('stderr');
    expect(lifecycleLogStream({ ...settings, format: 'combined', path: '/var/log/access.log' })).toBe('stdout');
    expect(lifecycleLogStream({ ...settings, format: 'combined', enabled: false })).toBe('stdout');
  });
});
