import { describe, expect, it } from 'vitest';
import { validateConfig } from '../../../src/config/load.js';
import { agentConfigSchema, stallLimit } from '../../../bgp/agent-config.js';

const parse = (health: Record<string, unknown>) =>
  validateConfig(agentConfigSchema, { pop: 'p', node: 'n', health: { url: 'http://127.0.0.1:80/_cdn/healthz', ...health }, bird: { socket: '/run/bird.ctl', announceFile: '/var/lib/announce.conf' } }, 'agent.yaml', {});

describe('the agent stall limit', () => {
  it.each<[string, Record<string, unknown>, number]>([
    ['fall × interval by default (1 s × 2)', {}, 2000],
    ['fall × interval as configured', { interval: '500ms', timeout: '500ms', fall: 3 }, 1500],
    ['as given', { stallLimit: '10s' }, 10_000],
    ['as given, equal to the interval', { interval: '2s', stallLimit: '2s' }, 2000],
  ])('%s', (_what, health, limit) => {
    expect(stallLimit(parse(health).health)).toBe(limit);
  });

  it('refuses a limit below the interval, naming the field', () => {
    expect(() => parse({ interval: '1s', stallLimit: '999ms' })).toThrow(/agent\.yaml.*health\.stallLimit.*at least health\.interval \(1000 ms\)/);
  });
});
