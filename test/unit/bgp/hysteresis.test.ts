import { describe, expect, it } from 'vitest';
import { INITIAL_HYSTERESIS, judge, type Hysteresis, type ProbeResult } from '../../../bgp/hysteresis.js';

const ok: ProbeResult = { kind: 'ok' };
const fail: ProbeResult = { kind: 'fail', reason: 'ECONNREFUSED' };
const draining: ProbeResult = { kind: 'draining' };

/** Feed results from the start; the verdict after each, and which ones changed it. */
function run(results: ProbeResult[], rise = 3, fall = 2): { healthy: boolean[]; changedAt: number[]; last: Hysteresis; reasons: string[] } {
  let state = INITIAL_HYSTERESIS;
  const healthy: boolean[] = [];
  const changedAt: number[] = [];
  const reasons: string[] = [];
  results.forEach((r, i) => {
    const v = judge(state, r, { rise, fall });
    state = v.state;
    healthy.push(state.healthy);
    reasons.push(v.reason);
    if (v.changed) changedAt.push(i);
  });
  return { healthy, changedAt, last: state, reasons };
}

describe('judge: rise and fall', () => {
  it.each<[string, ProbeResult[], number, number, boolean[], number[]]>([
    ['starts unhealthy; healthy on the third pass', [ok, ok, ok], 3, 2, [false, false, true], [2]],
    ['a failure restarts the count of passes', [ok, ok, fail, ok, ok, ok], 3, 2, [false, false, false, false, false, true], [5]],
    ['one failure is not enough to fall', [ok, ok, ok, fail, ok], 3, 2, [false, false, true, true, true], [2]],
    ['two failures in a row fall', [ok, ok, ok, fail, fail], 3, 2, [false, false, true, true, false], [2, 4]],
    ['a pass between failures resets the fall count', [ok, ok, ok, fail, ok, fail, ok], 3, 2, [false, false, true, true, true, true, true], [2]],
    ['rise 1 and fall 1 follow every result', [ok, fail, ok, fail], 1, 1, [true, false, true, false], [0, 1, 2, 3]],
    ['failures while unhealthy change nothing', [fail, fail, fail], 3, 2, [false, false, false], []],
    ['draining falls at once, skipping the fall count', [ok, ok, ok, draining], 3, 5, [false, false, true, false], [2, 3]],
    ['draining while unhealthy changes nothing', [draining, draining], 3, 2, [false, false], []],
    ['after draining it takes rise passes again', [ok, draining, ok, ok], 1, 2, [true, false, true, true], [0, 1, 2]],
  ])('%s', (_what, results, rise, fall, healthy, changedAt) => {
    const r = run(results, rise, fall);
    expect(r.healthy).toEqual(healthy);
    expect(r.changedAt).toEqual(changedAt);
  });

  it('says why', () => {
    expect(run([ok, ok, ok, fail, fail]).reasons).toEqual([
      '1 of 3 passing probes',
      '2 of 3 passing probes',
      '3 passing probes in a row',
      '1 of 2 failed probes (ECONNREFUSED)',
      '2 failed probes in a row (last: ECONNREFUSED)',
    ]);
    expect(run([ok], 1).reasons).toEqual(['1 passing probe in a row']);
    expect(run([ok, draining], 1).reasons).toEqual(['1 passing probe in a row', 'the edge is draining']);
  });

  it('remembers draining until the next result', () => {
    expect(run([ok, draining], 1).last).toEqual({ healthy: false, successes: 0, failures: 0, draining: true });
    expect(run([ok, draining, fail], 1).last).toEqual({ healthy: false, successes: 0, failures: 0, draining: false });
  });
});
