import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { CdnError } from '../../../src/errors.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { originConfigSchema } from '../../../origin/config.js';

const edge = { upstream: 'https://origin.example', pop: 'ams', node: 'ams-1', cacheDir: '/var/cache/anycdn' };
const origin = { dataDir: '/srv', publishToken: 'p'.repeat(16), purgeToken: 'q'.repeat(16) };
const pair = { cert: '/etc/anycdn/tls/cdn.pem', key: '/etc/anycdn/tls/cdn.key' };

function refusal(schema: typeof edgeConfigSchema | typeof originConfigSchema, raw: unknown): string {
  try {
    validateConfig(schema, raw, 'x.yaml', {});
  } catch (err) {
    expect(err).toBeInstanceOf(CdnError);
    return (err as CdnError).message;
  }
  throw new Error('expected a config error');
}

describe('tls settings', () => {
  it('edge: fills defaults', () => {
    const c = validateConfig(edgeConfigSchema, { ...edge, tls: { listen: '0.0.0.0:443', certificates: [pair] } }, 'x.yaml', {});
    expect(c.tls).toEqual({ listen: { host: '0.0.0.0', port: 443 }, certificates: [pair], minVersion: 'TLSv1.2', redirectHttp: false, quickFront: true });
    expect(c.upstreamTls).toBeUndefined();
  });

  it('edge: listen false, HTTPS alone', () => {
    const c = validateConfig(edgeConfigSchema, { ...edge, listen: false, tls: { listen: 443, certificates: [pair] } }, 'x.yaml', {});
    expect(c.listen).toBe(false);
    expect(c.tls?.listen).toEqual({ host: '127.0.0.1', port: 443 });
  });

  it('origin: clientCa, and no redirectHttp', () => {
    const c = validateConfig(originConfigSchema, { ...origin, tls: { listen: 8443, certificates: [pair], clientCa: ['/etc/anycdn/edges-ca.pem'] } }, 'x.yaml', {});
    expect(c.tls?.clientCa).toEqual(['/etc/anycdn/edges-ca.pem']);
    expect(refusal(originConfigSchema, { ...origin, tls: { listen: 8443, certificates: [pair], redirectHttp: true } })).toBe('x.yaml: tls.redirectHttp: unknown key');
  });

  it.each([
    [{ tls: { certificates: [pair] } }, 'x.yaml: tls.listen: required: the HTTPS listener\'s address, e.g. "0.0.0.0:443"'],
    [{ tls: { listen: 443, certificates: [] } }, 'x.yaml: tls.certificates: at least one { cert, key } pair'],
    [{ tls: { listen: 443, certificates: [{ cert: 'a.pem' }] } }, 'x.yaml: tls.certificates.0.key: Invalid input: expected string, received undefined'],
    [{ tls: { listen: 443, certificates: [pair], minVersion: 'TLSv1.1' } }, 'x.yaml: tls.minVersion: Invalid option: expected one of "TLSv1.2"|"TLSv1.3"'],
    [{ tls: { listen: 443, certificates: [pair], clientCa: ['ca.pem'] } }, 'x.yaml: tls.clientCa: unknown key'],
    [{ upstreamTls: { cert: 'c.pem' } }, 'x.yaml: upstreamTls.key: cert and key go together: give both or neither'],
    [{ upstreamTls: { key: 'c.key' } }, 'x.yaml: upstreamTls.cert: cert and key go together: give both or neither'],
    [{ upstreamTls: { ca: 'ca.pem' } }, 'x.yaml: upstreamTls.ca: Invalid input: expected array, received string'],
    [{ listen: false }, 'x.yaml: listen: false (no cleartext listener) needs a tls section to listen at all'],
    [{ listen: false, tls: { listen: 443, certificates: [pair], redirectHttp: true } }, 'x.yaml: tls.redirectHttp: needs the cleartext listener (listen is false)'],
  ])('edge refuses %j', (extra, message) => {
    expect(refusal(edgeConfigSchema, { ...edge, ...extra })).toBe(message);
  });
});
