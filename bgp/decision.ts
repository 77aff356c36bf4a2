/**
 * What the agent wants BIRD to announce, as a pure state machine over probe results, the passing
 * of time and the agent's own stop:
 *
 *   withdrawn ──(healthy: rise passing probes, not held down)──► announced
 *   announced ──(fall failed probes)──────────────────────────► withdrawn   at once: it is broken
 *   announced ──(edge draining, or agent stopping)────────────► draining    GRACEFUL_SHUTDOWN (RFC 8326)
 *   draining  ──(gracefulShutdown elapsed, or a probe fails)──► withdrawn
 *   any       ──(the agent did not run for over the stall limit)► withdrawn   health unknown
 *
 * A stall: the agent's events come at least every few hundred milliseconds (its watchdog ticks),
 * so a gap longer than `stallLimit` between two of them means the agent was not running (its
 * host or process stopped, or starved): whatever happened meanwhile, it did not see it. Its
 * verdict is then as at the start, unknown: withdrawn at once (no graceful shutdown: nobody knows
 * whether the edge can still serve), and `rise` passing probes again before announcing. A probe
 * sent before the stall was noticed is ignored: its answer may date from before the stall.
 *
 * Every change carries its reason; `notes` are what the agent logs and counts.
 */
import type { AnnounceState } from './announce.js';
import { INITIAL_DAMPING, isHeldDown, recordFlip, type Damping, type DampingConfig } from './damping.js';
import { INITIAL_HYSTERESIS, judge, type Hysteresis, type ProbeResult, type Thresholds } from './hysteresis.js';

export interface DecisionConfig extends Thresholds {
  damping: DampingConfig;
  /** How long `draining` lasts before the withdrawal; 0 withdraws at once. */
  gracefulShutdown: number;
  /**
   * The longest gap between two events that is not a stall: fall × interval in the agent, the
   * time in which a hung edge would have been withdrawn had the agent been running.
   */
  stallLimit: number;
}

export interface AgentState {
  health: Hysteresis;
  damping: Damping;
  announce: AnnounceState;
  /** While `draining`: when the withdrawal is due. */
  drainUntil: number | undefined;
  /** The agent is stopping: no more probes, it ends withdrawn. */
  stopping: boolean;
  /** The time of the last event: the agent was running then. */
  lastRan: number | undefined;
  /** When the last stall was noticed: probes sent before it are ignored. */
  resumedAt: number | undefined;
}

export const INITIAL_AGENT_STATE: AgentState = Object.freeze({
  health: INITIAL_HYSTERESIS,
  damping: INITIAL_DAMPING,
  announce: 'withdrawn',
  drainUntil: undefined,
  stopping: false,
  lastRan: undefined,
  resumedAt: undefined,
});

export type AgentEvent =
  /** `sent`: when the probe was sent (default: now); a probe sent before a stall was noticed is ignored. */
  | { type: 'probe'; result: ProbeResult; sent?: number }
  /** Time passed (a due withdrawal or the end of a hold-down). */
  | { type: 'tick' }
  /** SIGTERM (`immediate`: a second signal, withdraw without the graceful-shutdown period). */
  | { type: 'stop'; immediate: boolean };

export type AgentNote =
  | { kind: 'health'; healthy: boolean; reason: string }
  | { kind: 'held-down'; until: number; flips: number }
  /** The agent did not run for `gap` ms, more than `limit`: the edge's health is unknown. */
  | { kind: 'stalled'; gap: number; limit: number }
  /** A probe result ignored: the probe was sent at `sent`, before the stall noticed at `resumedAt`. */
  | { kind: 'stale-probe'; sent: number; resumedAt: number }
  | { kind: 'announce'; from: AnnounceState; to: AnnounceState; reason: string };

export function step(state: AgentState, event: AgentEvent, now: number, config: DecisionConfig): { state: AgentState; notes: AgentNote[] } {
  const notes: AgentNote[] = [];
  let { health, damping, stopping } = state;
  let healthReason: string | undefined;
  const holdOver = damping.heldUntil !== undefined && !isHeldDown(damping, now);
  if (holdOver) damping = { ...damping, heldUntil: undefined };
  let { resumedAt } = state;
  const gap = state.lastRan === undefined ? 0 : now - state.lastRan;
  if (gap > config.stallLimit && !stopping) {
    // Not a probe result: the state as at the start, whatever the edge did meanwhile.
    resumedAt = now;
    healthReason = `health unknown: the agent did not run for ${Math.round(gap)} ms (over the stall limit, ${config.stallLimit} ms)`;
    notes.push({ kind: 'stalled', gap, limit: config.stallLimit });
    if (health.healthy) {
      notes.push({ kind: 'health', healthy: false, reason: healthReason });
      const flip = recordFlip(damping, now, config.damping);
      damping = flip.state;
      if (flip.heldDown) notes.push({ kind: 'held-down', until: damping.heldUntil!, flips: flip.flips });
    }
    health = INITIAL_HYSTERESIS;
  }
  const stale = event.type === 'probe' && resumedAt !== undefined && (event.sent ?? now) < resumedAt;
  if (stale) notes.push({ kind: 'stale-probe', sent: event.sent!, resumedAt: resumedAt! });
  if (event.type === 'probe' && !stopping && !stale) {
    const verdict = judge(health, event.result, config);
    health = verdict.state;
    healthReason = verdict.reason;
    if (verdict.changed) {
      notes.push({ kind: 'health', healthy: health.healthy, reason: verdict.reason });
      // A planned drain is not flapping: only the edge coming back afterwards counts.
      if (event.result.kind !== 'draining') {
        const flip = recordFlip(damping, now, config.damping);
        damping = flip.state;
        if (flip.heldDown) notes.push({ kind: 'held-down', until: damping.heldUntil!, flips: flip.flips });
      }
    }
  }
  const immediate = event.type === 'stop' && event.immediate;
  if (event.type === 'stop') stopping = true;

  const { announce } = state;
  let wanted: AnnounceState;
  let drainUntil: number | undefined;
  let reason: string;
  if (immediate) {
    wanted = 'withdrawn';
    reason = 'agent stopping at once';
  } else if (stopping || health.draining) {
    const why = stopping ? 'agent stopping' : 'the edge is draining';
    if (announce === 'announced' && config.gracefulShutdown > 0) {
      wanted = 'draining';
      drainUntil = now + config.gracefulShutdown;
      reason = `${why}: graceful shutdown (RFC 8326) for ${config.gracefulShutdown} ms, then withdraw`;
    } else if (announce === 'draining' && now < state.drainUntil!) {
      wanted = 'draining';
      drainUntil = state.drainUntil;
      reason = why;
    } else {
      wanted = 'withdrawn';
      reason = announce === 'draining' ? `${why}: graceful shutdown period over` : why;
    }
  } else if (!health.healthy) {
    wanted = 'withdrawn';
    reason = `unhealthy: ${healthReason ?? 'not proved healthy yet'}`;
  } else if (isHeldDown(damping, now)) {
    wanted = 'withdrawn';
    reason = `flapping: held withdrawn for ${damping.heldUntil! - now} ms more`;
  } else {
    wanted = 'announced';
    reason = holdOver ? 'hold-down over, healthy' : `healthy: ${healthReason ?? 'as before'}`;
  }
  if (wanted !== announce) notes.push({ kind: 'announce', from: announce, to: wanted, reason });
  return { state: { health, damping, announce: wanted, drainUntil, stopping, lastRan: now, resumedAt }, notes };
}

/** When the state changes by time alone (a due withdrawal, the end of a hold-down), if ever. */
export function nextDeadline(state: AgentState, now: number): number | undefined {
  const times = [state.drainUntil, isHeldDown(state.damping, now) ? state.damping.heldUntil : undefined].filter((t): t is number => t !== undefined);
  return times.length === 0 ? undefined : Math.min(...times);
}

/** The agent is done: stopping and nothing announced any more. */
export function isFinished(state: AgentState): boolean {
  return state.stopping && state.announce === 'withdrawn';
}
