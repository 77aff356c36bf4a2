/**
 * When the purge subscriber connects again, as pure functions: exponential backoff with jitter
 * (half the delay fixed, half random, so edges that lost the origin together do not come back
 * together), the longest wait for a refusal that retrying soon will not fix (a wrong token, a
 * stream switched off), a server's `Retry-After` honoured, and how long a silent stream may stay
 * silent before it counts as dead (three heartbeats: a half-open connection must not stop purges).
 */

export interface BackoffPolicy {
  /** The first delay. */
  baseMs: number;
  /** No delay is longer. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffPolicy> = Object.freeze({ baseMs: 250, maxMs: 30_000 });

/** Why the last attempt ended. */
export type AttemptEnd =
  /** The stream broke, ended, fell silent or could not connect. */
  | { kind: 'failed' }
  /** The origin refused the stream with this status (and maybe a Retry-After in seconds). */
  | { kind: 'refused'; status: number; retryAfterSec?: number };

/** Statuses that do not change by retrying soon: a wrong or missing token, a stream switched off. */
const PERSISTENT = new Set([400, 401, 403, 404]);

/**
 * The wait before connection attempt number `attempt + 1` (attempt 0 follows the first failure),
 * with `random` in [0, 1).
 */
export function reconnectDelay(attempt: number, end: AttemptEnd, random: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  if (end.kind === 'refused' && PERSISTENT.has(end.status)) return policy.maxMs;
  const ceiling = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(attempt, 30));
  const jittered = Math.round(ceiling / 2 + (random * ceiling) / 2);
  const asked = end.kind === 'refused' && end.retryAfterSec !== undefined ? Math.min(policy.maxMs, end.retryAfterSec * 1000) : 0;
  return Math.max(jittered, asked);
}

/** Heartbeats a stream may miss before it counts as dead. */
export const MISSED_HEARTBEATS = 3;

/** How long a stream may send nothing before the edge drops it and connects again. */
export function silenceLimit(heartbeatMs: number): number {
  return MISSED_HEARTBEATS * heartbeatMs;
}

/** A `Retry-After` in seconds (delay-seconds only; RFC 9110 §10.2.3), or undefined. */
export function retryAfterSeconds(value: string | string[] | undefined): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  return text !== undefined && /^\d{1,6}$/.test(text.trim()) ? Number(text.trim()) : undefined;
}
