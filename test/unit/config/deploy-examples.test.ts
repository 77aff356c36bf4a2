import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { parseConfigText } from '../../support/config-text.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { originConfigSchema } from '../../../origin/config.js';

function example(name: string): unknown {
  const file = fileURLToPath(new URL(`../../../deploy/${name}`, import.meta.url));
  return parseConfigText(file, readFileSync(file, 'utf8'));
}

describe('the example configs operators copy', () => {
  it('origin.example.yaml is valid', () => {
    const c = validateConfig(originConfigSchema, example('origin.example.yaml'), 'origin.example.yaml', { ANYCDN_PUBLISH_TOKEN: 'p'.repeat(32), ANYCDN_PURGE_TOKEN: 'q'.repeat(32), ANYCDN_EDGE_TOKEN: 'e'.repeat(32) });
    expect(c.dataDir).toBe('/var/lib/anycdn/origin');
    expect(c.edgeToken).toBe('e'.repeat(32));
    expect(c.purge.retainBytes).toBe(64 * 1024 * 1024);
    expect(c.images.avifEffort).toBe(2);
    expect(c.images.sourceCacheSize).toBe(64 * 1024 * 1024);
    expect(c.accessLog).toMatchObject({ enabled: true, path: '/var/log/anycdn/origin-access.log', format: 'json' });
  });
  it('edge.example.yaml is valid', () => {
    const c = validateConfig(edgeConfigSchema, example('edge.example.yaml'), 'edge.example.yaml', { ANYCDN_EDGE_TOKEN: 'e'.repeat(32), ANYCDN_ADMIN_TOKEN: 'a'.repeat(32) });
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 80 });
    expect([c.edgeToken, c.purgeFrom, c.purge.catchUpTimeout, c.adminToken]).toEqual(['e'.repeat(32), 'http://origin.internal:8081', 3000, 'a'.repeat(32)]);
    expect(c.compression.minBytes).toBe(1024);
    expect(c.accessLog).toEqual({ enabled: true, path: '/var/log/anycdn/edge-access.log', format: 'json', sample: 1, maxBufferBytes: 4 * 1024 * 1024, flushInterval: 1000 });
  });

  it('logrotate rotates the access log files the example configs write, and has the units reopen them', () => {
    const file = fileURLToPath(new URL('../../../deploy/logrotate/anycdn', import.meta.url));
    const rotate = readFileSync(file, 'utf8');
    const pattern = new RegExp(`^${/^(\S+) \{$/m.exec(rotate)![1]!.replace(/[.]/g, '\\.').replace('*', '[^/]*')}$`);
    const origin = example('origin.example.yaml') as { accessLog: { path: string } };
    const edge = example('edge.example.yaml') as { accessLog: { path: string } };
    expect(pattern.test(origin.accessLog.path)).toBe(true);
    expect(pattern.test(edge.accessLog.path)).toBe(true);
    expect(rotate).toContain('systemctl reload anycdn-edge.service anycdn-origin.service');
    for (const unit of ['anycdn-edge.service', 'anycdn-origin.service']) {
      const text = readFileSync(fileURLToPath(new URL(`../../../deploy/systemd/${unit}`, import.meta.url)), 'utf8');
      expect(text).toContain('ExecReload=/bin/kill -USR1 $MAINPID');
      expect(text).toContain('LogsDirectory=anycdn');
    }
  });
});
