import { describe, expect, it } from 'vitest';
import { INITIAL_AGENT_STATE, isFinished, nextDeadline, step, type AgentEvent, type AgentNote, type AgentState } from '../../../bgp/decision.js';

// These events are sparse (the agent's watchdog ticks left out), so no gap is a stall here; stalls
// have their own limit below.
const config = { rise: 2, fall: 2, gracefulShutdown: 5000, damping: { maxFlips: 3, window: 60_000, holdDown: 300_000 }, stallLimit: Number.POSITIVE_INFINITY };

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

describe('a stall: the agent did not run for longer than fall × interval', () => {
  // interval 1000 ms, fall 2: the agent's events come at least every 500 ms (its watchdog).
  const stalling = { ...config, stallLimit: 2000 };
  const sentAt = (sent: number, kind: 'ok' | 'fail' = 'ok'): AgentEvent => ({ type: 'probe', result: kind === 'ok' ? { kind } : { kind, reason: 'status 500' }, sent });
  const reason = (gap: number) => `health unknown: the agent did not run for ${gap} ms (over the stall limit, 2000 ms)`;

  it('withdraws an announced edge at once, without graceful shutdown, and announces after rise passes again', () => {
    const r = run([[0, ok], [500, tick], [1000, ok], [1500, tick], [6500, tick], [6501, sentAt(6501)], [7500, sentAt(7500)]], stalling);
    expect(r.states).toEqual(['withdrawn', 'withdrawn', 'announced', 'announced', 'withdrawn', 'withdrawn', 'announced']);
    expect(r.notes.slice(2)).toEqual([
      { kind: 'stalled', gap: 5000, limit: 2000 },
      { kind: 'health', healthy: false, reason: reason(5000) },
      { kind: 'announce', from: 'announced', to: 'withdrawn', reason: `unhealthy: ${reason(5000)}` },
      { kind: 'health', healthy: true, reason: '2 passing probes in a row' },
      { kind: 'announce', from: 'withdrawn', to: 'announced', reason: 'healthy: 2 passing probes in a row' },
    ]);
    expect(r.last.resumedAt).toBe(6500);
  });

  it('ignores a probe sent before the stall: its answer may be from before it', () => {
    // Sent at 1500, answered (or read) after a 4 s stall: the gap is noticed on this very result.
    const r = run([[0, ok], [1000, ok], [1500, tick], [5500, sentAt(1500)], [6000, sentAt(5600)], [7000, sentAt(7000)]], stalling);
    expect(r.states).toEqual(['withdrawn', 'announced', 'announced', 'withdrawn', 'withdrawn', 'announced']);
    expect(r.notes.slice(2, 4)).toEqual([
      { kind: 'stalled', gap: 4000, limit: 2000 },
      { kind: 'health', healthy: false, reason: reason(4000) },
    ]);
    expect(r.notes).toContainEqual({ kind: 'stale-probe', sent: 1500, resumedAt: 5500 });
    expect(r.notes.filter((n) => n.kind === 'stale-probe')).toHaveLength(1);
  });

  it('a stale probe is ignored whatever it says, after the stall was noticed too', () => {
    // The watchdog noticed the stall at 5000; a probe sent at 1500 comes back at 5010 saying ok.
    const r = run([[0, ok], [1000, ok], [1500, tick], [5000, tick], [5010, sentAt(1500)], [5020, sentAt(5015)], [5030, sentAt(1500)]], stalling);
    expect(r.states).toEqual(['withdrawn', 'announced', 'announced', 'withdrawn', 'withdrawn', 'withdrawn', 'withdrawn']);
    expect(r.last.health).toEqual({ healthy: false, successes: 1, failures: 0, draining: false });
  });

  it('passes counted before the stall do not count after it', () => {
    const r = run([[0, ok], [2500, sentAt(2400)], [3000, sentAt(3000)], [4000, sentAt(4000)]], stalling);
    expect(r.states).toEqual(['withdrawn', 'withdrawn', 'withdrawn', 'announced']);
    // Already withdrawn: nothing to withdraw, no health change; the pass from before is gone and
    // the probe sent at 2400, before the stall was noticed, is ignored.
    expect(r.notes).toEqual([
      { kind: 'stalled', gap: 2500, limit: 2000 },
      { kind: 'stale-probe', sent: 2400, resumedAt: 2500 },
      { kind: 'health', healthy: true, reason: '2 passing probes in a row' },
      { kind: 'announce', from: 'withdrawn', to: 'announced', reason: 'healthy: 2 passing probes in a row' },
    ]);
  });

  it('a gap of exactly the limit is not a stall; a millisecond more is', () => {
    expect(run([[0, ok], [1000, ok], [3000, tick]], stalling).states).toEqual(['withdrawn', 'announced', 'announced']);
    expect(run([[0, ok], [1000, ok], [3001, tick]], stalling).states).toEqual(['withdrawn', 'announced', 'withdrawn']);
  });

  it('watchdog ticks keep a long wait (a slow probe, a slow BIRD) from looking like a stall', () => {
    const events: [number, AgentEvent][] = [[0, ok], [1000, ok]];
    for (let t = 1500; t <= 20_000; t += 500) events.push([t, tick]);
    events.push([20_100, sentAt(1000)]);
    const r = run(events, stalling);
    expect(r.states.every((s, i) => i === 0 || s === 'announced')).toBe(true);
    expect(r.notes.filter((n) => n.kind === 'stalled' || n.kind === 'stale-probe')).toEqual([]);
  });

  it('withdraws a draining edge at once: its graceful shutdown is not waited for', () => {
    const r = run([[0, ok], [1000, ok], [1500, draining], [1900, tick], [4000, tick]], stalling);
    expect(r.states).toEqual(['withdrawn', 'announced', 'draining', 'draining', 'withdrawn']);
    expect(r.notes[r.notes.length - 1]).toEqual({ kind: 'announce', from: 'draining', to: 'withdrawn', reason: `unhealthy: ${reason(2100)}` });
  });

  it('a stopping agent goes on stopping: no stall verdict', () => {
    const r = run([[0, ok], [1000, ok], [1500, stop], [6600, tick]], stalling);
    expect(r.states).toEqual(['withdrawn', 'announced', 'draining', 'withdrawn']);
    expect(r.notes.some((n) => n.kind === 'stalled')).toBe(false);
    expect(isFinished(r.last)).toBe(true);
  });

  it('counts the withdrawal of a healthy edge as a flip for damping', () => {
    const damped = { ...stalling, rise: 1, damping: { maxFlips: 2, window: 60_000, holdDown: 30_000 } };
    // Flips: announced at 0, stall at 3000 (second), announced at 3001 (third: held down).
    const r = run([[0, ok], [500, tick], [3000, tick], [3001, sentAt(3001)]], damped);
    expect(r.states).toEqual(['announced', 'announced', 'withdrawn', 'withdrawn']);
    expect(r.notes).toContainEqual({ kind: 'held-down', until: 33_001, flips: 3 });
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
