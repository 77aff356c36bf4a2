import { describe, expect, it } from 'vitest';
import { MAX_WORKERS } from '../../../edge/cluster-protocol.js';
import { workersAsked } from '../../../edge/cluster.js';
import { edgeConfigSchema } from '../../../edge/config.js';
import { validateConfig } from '../../../src/config/load.js';

const base = { upstream: 'http://origin.internal:8081', pop: 'p', node: 'n', cacheDir: '/var/cache/anycdn' };

describe('workersAsked: the workers forked before the config is validated', () => {
  it.each([
    [{ ...base }, 1],
    [{ ...base, workers: 1 }, 1],
    [{ ...base, workers: 2 }, 2],
    [{ ...base, workers: MAX_WORKERS }, MAX_WORKERS],
    [{ ...base, workers: MAX_WORKERS + 1 }, 1],
    [{ ...base, workers: 0 }, 1],
    [{ ...base, workers: 2.5 }, 1],
    [{ ...base, workers: '2' }, 1],
    [{ ...base, workers: { env: 'WORKERS' } }, 1],
    [null, 1],
    ['workers: 2', 1],
    [[2], 1],
  ])('%j → %i', (raw, want) => {
    expect(workersAsked(raw)).toBe(want);
  });

  it('forks early exactly as many workers as the validated config runs, whenever it is valid', () => {
    for (const workers of [undefined, 1, 2, 3, MAX_WORKERS]) {
      const raw = workers === undefined ? base : { ...base, workers };
      expect(workersAsked(raw)).toBe(validateConfig(edgeConfigSchema, raw, 'edge.yaml', {}).workers);
    }
  });

  it('forks none for a count the schema refuses', () => {
    for (const workers of [0, MAX_WORKERS + 1, 1.5]) {
      expect(() => validateConfig(edgeConfigSchema, { ...base, workers }, 'edge.yaml', {})).toThrow(/^edge\.yaml: workers: /);
      expect(workersAsked({ ...base, workers })).toBe(1);
    }
  });
});
