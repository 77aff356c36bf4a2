/**
 * What the agent wants BIRD to announce, as a pure state machine over probe results, the passing
 * of time and the agent's own stop:
 *
 *   withdrawn ──(healthy: rise passing probes, not held down)──► announced
 *   announced ──(fall failed probes)──────────────────────────► withdrawn   at once: it is broken
 *   announced ──(edge draining, or agent stopping)────────────► draining    GRACEFUL_SHUTDOWN (RFC 8326)
 *   draining  ──(gracefulShutdown elapsed, or a probe fails)──► withdrawn
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
}

export interface AgentState {
  health: Hysteresis;
  damping: Damping;
  announce: AnnounceState;
  /** While `draining`: when the withdrawal is due. */
  drainUntil: number | undefined;
  /** The agent is stopping: no more probes, it ends withdrawn. */
  stopping: boolean;
}

export const INITIAL_AGENT_STATE: AgentState = Object.freeze({ health: INITIAL_HYSTERESIS, damping: INITIAL_DAMPING, announce: 'withdrawn', drainUntil: undefined, stopping: false });

export type AgentEvent =
  | { type: 'probe'; result: ProbeResult }
  /** Time passed (a due withdrawal or the end of a hold-down). */
  | { type: 'tick' }
  /** SIGTERM (`immediate`: a second signal, withdraw without the graceful-shutdown period). */
  | { type: 'stop'; immediate: boolean };

export type AgentNote =
  | { kind: 'health'; healthy: boolean; reason: string }
  | { kind: 'held-down'; until: number; flips: number }
  | { kind: 'announce'; from: AnnounceState; to: AnnounceState; reason: string };

export function step(state: AgentState, event: AgentEvent, now: number, config: DecisionConfig): { state: AgentState; notes: AgentNote[] } {
  const notes: AgentNote[] = [];
  let { health, damping, stopping } = state;
  let healthReason: string | undefined;
  const holdOver = damping.heldUntil !== undefined && !isHeldDown(damping, now);
  if (holdOver) damping = { ...damping, heldUntil: undefined };
  if (event.type === 'probe' && !stopping) {
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
  return { state: { health, damping, announce: wanted, drainUntil, stopping }, notes };
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
