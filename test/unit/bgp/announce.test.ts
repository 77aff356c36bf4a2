import { describe, expect, it } from 'vitest';
import { announceInclude, parseAnnounceInclude } from '../../../bgp/announce.js';
import { verdict } from '../../../bgp/health-probe.js';

describe('the announce include', () => {
  it.each([
    ['withdrawn', 0, 0],
    ['announced', 1, 0],
    ['draining', 1, 1],
  ] as const)('%s: ANNOUNCE %i, GSHUT %i', (state, announce, gshut) => {
    const text = announceInclude(state);
    expect(text).toBe(
      `# anycdn announce state: ${state}. Rewritten by anycdn bgp agent, then BIRD reconfigured.\n` +
        `define ANYCDN_ANNOUNCE = ${announce};\n` +
        `define ANYCDN_GSHUT = ${gshut};\n`,
    );
    expect(parseAnnounceInclude(text)).toBe(state);
  });

  it.each(['', 'define ANYCDN_ANNOUNCE = 1;\n', announceInclude('announced').replace('= 1', '= 2')])('does not read %j as a state', (text) => {
    expect(parseAnnounceInclude(text)).toBeUndefined();
  });
});

describe('a health answer as a probe result', () => {
  it.each([
    [200, '{"status":"ok","pop":"ams","node":"ams-1"}', { kind: 'ok' }],
    [200, '', { kind: 'ok' }],
    [503, '{"status":"draining","pop":"ams","node":"ams-1"}', { kind: 'draining' }],
    [503, '{"status":"store-closed"}', { kind: 'fail', reason: 'status 503: {"status":"store-closed"}' }],
    [503, 'draining', { kind: 'fail', reason: 'status 503: draining' }],
    [500, '', { kind: 'fail', reason: 'status 500' }],
    [404, 'not\n  found', { kind: 'fail', reason: 'status 404: not found' }],
    [200 + 1, 'x'.repeat(300), { kind: 'fail', reason: `status 201: ${'x'.repeat(200)}` }],
  ])('%i %j', (status, body, result) => {
    expect(verdict(status, body)).toEqual(result);
  });
});
