import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parseConfigText, validateConfig } from '../../../src/config/load.js';
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
  });
  it('edge.example.yaml is valid', () => {
    const c = validateConfig(edgeConfigSchema, example('edge.example.yaml'), 'edge.example.yaml', {});
    expect(c.listen).toEqual({ host: '0.0.0.0', port: 80 });
    expect(c.compression.minBytes).toBe(1024);
  });
});
