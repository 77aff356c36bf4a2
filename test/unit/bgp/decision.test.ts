import { describe, expect, it } from 'vitest';
import { INITIAL_AGENT_STATE, isFinished, nextDeadline, step, type AgentEvent, type AgentNote, type AgentState } from '../../../bgp/decision.js';

const config = { rise: 2, fall: 2, gracefulShutdown: 5000, damping: { maxFlips: 3, window: 60_000, holdDown: 300_000 } };

const ok: AgentEvent = { type: 'probe', result: { kind: 'ok' } };
const fail: AgentEvent = { type: 'probe', result: { kind: 'fail', reason: 'status 500' } };
const draining: AgentEvent = { type: 'probe', result: { kind: 'draining' } };
const tick: AgentEvent = { type: 'tick' };
const stop: AgentEvent = { type: 'stop', immediate: false };
const stopNow: AgentEvent = { type: 'stop', immediate: true };

/** Events at literal times; the announce state after each, and every note. */
function run(events: [number, AgentEvent][], cfg = config): { states: string[]; notes: AgentNote[]; last: AgentState } {
  let state = INITIAL_AGENT_STATE;
  const states: string[] = [];
  const notes: AgentNote[] = [];
  for (const [now, event] of events) {
    const r = step(state, event, now, cfg);
    state = r.state;
    states.push(state.announce);
    notes.push(...r.notes);
  }
  return { states, notes, last: state };
}

describe('what the agent announces', () => {
  it('starts withdrawn and announces after rise passing probes', () => {
    const r = run([[0, ok], [1000, ok], [2000, ok]]);
    expect(r.states).toEqual(['withdrawn', 'announced', 'announced']);
    expect(r.notes).toEqual([
      { kind: 'health', healthy: true, reason: '2 passing probes in a row' },
      { kind: 'announce', from: 'withdrawn', to: 'announced', reason: 'healthy: 2 passing probes in a row' },
    ]);
  });

  it('withdraws at once, without graceful shutdown, after fall failures', () => {
    const r = run([[0, ok], [1000, ok], [2000, fail], [3000, fail]]);
    expect(r.states).toEqual(['withdrawn', 'announced', 'announced', 'withdrawn']);
    expect(r.notes.slice(2)).toEqual([
      { kind: 'health', healthy: false, reason: '2 failed probes in a row (last: status 500)' },
      { kind: 'announce', from: 'announced', to: 'withdrawn', reason: 'unhealthy: 2 failed probes in a row (last: status 500)' },
    ]);
  });

  it('drains a draining edge: graceful shutdown for its moment, then withdrawn', () => {
    const r = run([[0, ok], [1000, ok], [2000, draining], [3000, draining], [6999, tick], [7000, tick], [8000, draining]]);
    expect(r.states).toEqual(['withdrawn', 'announced', 'draining', 'draining', 'draining', 'withdrawn', 'withdrawn']);
    expect(r.notes.slice(2)).toEqual([
      { kind: 'health', healthy: false, reason: 'the edge is draining' },
      { kind: 'announce', from: 'announced', to: 'draining', reason: 'the edge is draining: graceful shutdown (RFC 8326) for 5000 ms, then withdraw' },
      { kind: 'announce', from: 'draining', to: 'withdrawn', reason: 'the edge is draining: graceful shutdown period over' },
    ]);
  });

  it('withdraws during the graceful shutdown when the edge stops answering', () => {
    const r = run([[0, ok], [1000, ok], [2000, draining], [3000, fail]]);
    expect(r.states).toEqual(['withdrawn', 'announced', 'draining', 'withdrawn']);
    expect(r.notes[r.notes.length - 1]).toEqual({ kind: 'announce', from: 'draining', to: 'withdrawn', reason: 'unhealthy: status 500' });
  });

  it('with gracefulShutdown 0 a drain withdraws at once', () => {
    const r = run([[0, ok], [1000, ok], [2000, draining]], { ...config, gracefulShutdown: 0 });
    expect(r.states).toEqual(['withdrawn', 'announced', 'withdrawn']);
  });

  it('announces again after a drain once the edge is back for rise probes', () => {
    const r = run([[0, ok], [1000, ok], [2000, draining], [7000, tick], [8000, ok], [9000, ok]]);
    expect(r.states).toEqual(['withdrawn', 'announced', 'draining', 'withdrawn', 'withdrawn', 'announced']);
  });

  it('holds a flapping edge withdrawn, then announces when the hold-down is over', () => {
    const cfg = { ...config, rise: 1, fall: 1 };
    // Flips at 0, 1000, 2000 (three: allowed); the fourth at 3000 holds down until 303000.
    const r = run([[0, ok], [1000, fail], [2000, ok], [3000, fail], [4000, ok], [302_999, ok], [303_000, tick]], cfg);
    expect(r.states).toEqual(['announced', 'withdrawn', 'announced', 'withdrawn', 'withdrawn', 'withdrawn', 'announced']);
    expect(r.notes.filter((n) => n.kind !== 'health')).toEqual([
      { kind: 'announce', from: 'withdrawn', to: 'announced', reason: 'healthy: 1 passing probe in a row' },
      { kind: 'announce', from: 'announced', to: 'withdrawn', reason: 'unhealthy: 1 failed probe in a row (last: status 500)' },
      { kind: 'announce', from: 'withdrawn', to: 'announced', reason: 'healthy: 1 passing probe in a row' },
      { kind: 'held-down', until: 303_000, flips: 4 },
      { kind: 'announce', from: 'announced', to: 'withdrawn', reason: 'unhealthy: 1 failed probe in a row (last: status 500)' },
      { kind: 'announce', from: 'withdrawn', to: 'announced', reason: 'hold-down over, healthy' },
    ]);
  });

  it('does not count planned drains as flapping', () => {
    const cfg = { ...config, rise: 1, fall: 1 };
    // Two drains and returns: three flips counted (the start and the two returns), not five.
    const events: [number, AgentEvent][] = [[0, ok]];
    for (const t of [1000, 10_000]) events.push([t, draining], [t + 5000, tick], [t + 6000, ok]);
    const r = run(events, cfg);
    expect(r.states).toEqual(['announced', 'draining', 'withdrawn', 'announced', 'draining', 'withdrawn', 'announced']);
    expect(r.last.damping).toEqual({ flips: [0, 7000, 16_000], heldUntil: undefined });
    expect(r.notes.some((n) => n.kind === 'held-down')).toBe(false);
  });

  it('stopping while announced: graceful shutdown, then withdrawn and finished; probes ignored', () => {
    const r = run([[0, ok], [1000, ok], [2000, stop], [3000, ok], [7000, tick]]);
    expect(r.states).toEqual(['withdrawn', 'announced', 'draining', 'draining', 'withdrawn']);
    expect(r.notes.slice(2)).toEqual([
      { kind: 'announce', from: 'announced', to: 'draining', reason: 'agent stopping: graceful shutdown (RFC 8326) for 5000 ms, then withdraw' },
      { kind: 'announce', from: 'draining', to: 'withdrawn', reason: 'agent stopping: graceful shutdown period over' },
    ]);
    expect(isFinished(r.last)).toBe(true);
  });

  it('a second signal withdraws at once', () => {
    const r = run([[0, ok], [1000, ok], [2000, stop], [2500, stopNow]]);
    expect(r.states).toEqual(['withdrawn', 'announced', 'draining', 'withdrawn']);
    expect(r.notes[r.notes.length - 1]).toEqual({ kind: 'announce', from: 'draining', to: 'withdrawn', reason: 'agent stopping at once' });
    expect(isFinished(r.last)).toBe(true);
  });

  it('stopping while withdrawn finishes at once', () => {
    const r = run([[0, ok], [500, stop]]);
    expect(r.states).toEqual(['withdrawn', 'withdrawn']);
    expect(r.notes).toEqual([]);
    expect(isFinished(r.last)).toBe(true);
  });
});

describe('nextDeadline', () => {
  it.each<[string, [number, AgentEvent][], number, number | undefined]>([
    ['nothing pending', [[0, ok], [1000, ok]], 1000, undefined],
    ['the end of the graceful shutdown', [[0, ok], [1000, ok], [2000, draining]], 2000, 7000],
    ['the end of a hold-down', [[0, ok], [1, fail], [2, ok], [3, fail]], 3, 300_003],
    ['no hold-down once it is over', [[0, ok], [1, fail], [2, ok], [3, fail]], 300_003, undefined],
  ])('%s', (_what, events, now, deadline) => {
    const cfg = { ...config, rise: 1, fall: 1 };
    expect(nextDeadline(run(events, cfg).last, now)).toBe(deadline);
  });
});
