/**
 * The events of the origin's purge stream (README "The purge stream (for edges)"), read from their
 * JSON into checked values. Pure: anything that is not what the protocol says is a string naming
 * the problem, and the subscriber drops the connection and reconnects rather than guess.
 */
import type { Purge, PurgeTarget } from '../../src/purge/purge-request.js';

export interface HelloEvent {
  kind: 'hello';
  format: number;
  log: string;
  firstSeq: number;
  lastSeq: number;
  heartbeatMs: number;
}

export type ResetReason = 'compacted' | 'ahead' | 'other-log';

export interface ResetEvent {
  kind: 'reset';
  reason: ResetReason;
  log: string;
  firstSeq: number;
  lastSeq: number;
}

export interface PurgeEvent {
  kind: 'purge';
  seq: number;
  id: string;
  /** When the origin logged it (ms since the epoch, its clock). */
  time: number;
  purge: Purge;
}

export interface HeartbeatEvent {
  kind: 'heartbeat';
  lastSeq: number;
  time: number;
}

export type StreamEvent = HelloEvent | ResetEvent | PurgeEvent | HeartbeatEvent;

/** Formats of the purge stream this edge reads. */
export const STREAM_FORMATS: readonly number[] = [1];
const LOG_ID = /^[0-9a-f]{12}$/;
const RESETS: readonly string[] = ['compacted', 'ahead', 'other-log'];

/** The event of an SSE `event` name and `data`; undefined for an event this edge does not know (ignored). */
export function readStreamEvent(event: string, data: string): StreamEvent | string | undefined {
  if (!['hello', 'reset', 'purge', 'heartbeat'].includes(event)) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    return `${event}: data is not JSON`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `${event}: data is not an object`;
  const v = value as Record<string, unknown>;
  switch (event) {
    case 'hello':
      if (typeof v.format !== 'number' || !STREAM_FORMATS.includes(v.format)) return `hello: format ${JSON.stringify(v.format)} is not one this edge reads (${STREAM_FORMATS.join(', ')})`;
      if (!isLog(v.log) || !isSeq(v.firstSeq) || !isSeq(v.lastSeq) || !isPositive(v.heartbeatMs)) return 'hello: log, firstSeq, lastSeq or heartbeatMs missing or wrong';
      return { kind: 'hello', format: v.format, log: v.log, firstSeq: v.firstSeq, lastSeq: v.lastSeq, heartbeatMs: v.heartbeatMs };
    case 'reset':
      if (typeof v.reason !== 'string' || !RESETS.includes(v.reason) || !isLog(v.log) || !isSeq(v.firstSeq) || !isSeq(v.lastSeq)) return 'reset: reason, log, firstSeq or lastSeq missing or wrong';
      return { kind: 'reset', reason: v.reason as ResetReason, log: v.log, firstSeq: v.firstSeq, lastSeq: v.lastSeq };
    case 'heartbeat':
      if (!isSeq(v.lastSeq) || !Number.isSafeInteger(v.time)) return 'heartbeat: lastSeq or time missing or wrong';
      return { kind: 'heartbeat', lastSeq: v.lastSeq, time: v.time as number };
    default:
      return purgeEvent(v);
  }
}

function purgeEvent(v: Record<string, unknown>): PurgeEvent | string {
  if (!isSeq(v.seq) || v.seq < 1 || typeof v.id !== 'string' || !Number.isSafeInteger(v.time)) return 'purge: seq, id or time missing or wrong';
  if (typeof v.soft !== 'boolean' || typeof v.all !== 'boolean') return `purge ${v.seq}: soft and all must be true or false`;
  const urls = targets(v.urls);
  const prefixes = targets(v.prefixes);
  if (urls === undefined || prefixes === undefined) return `purge ${v.seq}: urls and prefixes must be lists of {path} or {host, path}`;
  if (!Array.isArray(v.tags) || !v.tags.every((t) => typeof t === 'string')) return `purge ${v.seq}: tags must be a list of strings`;
  return { kind: 'purge', seq: v.seq, id: v.id, time: v.time as number, purge: { urls, prefixes, tags: v.tags as string[], all: v.all, soft: v.soft } };
}

function targets(value: unknown): PurgeTarget[] | undefined {
  if (!Array.isArray(value)) return undefined;
  const out: PurgeTarget[] = [];
  for (const t of value) {
    if (typeof t !== 'object' || t === null) return undefined;
    const { host, path } = t as Record<string, unknown>;
    if (typeof path !== 'string' || !path.startsWith('/') || (host !== undefined && typeof host !== 'string')) return undefined;
    out.push(host === undefined ? { path } : { host, path });
  }
  return out;
}

function isLog(value: unknown): value is string {
  return typeof value === 'string' && LOG_ID.test(value);
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isPositive(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) > 0;
}
