/**
 * What the lab's client saw, and what tests and the benchmark read from it: which PoP answered,
 * when traffic moved, which requests failed and whether one retry recovered them. Pure functions
 * of the client's records (deploy/lab/client.ts prints one per attempt).
 */

export interface ClientRecord {
  /** The request's number; a retry has its request's number. */
  seq: number;
  /** 1, or 2 for the one retry (`--retry`). */
  attempt: 1 | 2;
  /** Milliseconds on the machine's clock (performance.timeOrigin + performance.now()). */
  start: number;
  end: number;
  status?: number;
  /** `X-Served-By`: `pop/node`. */
  by?: string;
  error?: string;
  /** The attempt went out on a connection that had carried an earlier request. */
  reused: boolean;
  /** The answer said `Connection: close`. */
  close?: true;
  /** On a failure: whether the connection had been made (false: the SYN went unanswered). */
  connected?: boolean;
}

/** A 200 with its whole body. */
export function succeeded(record: ClientRecord): boolean {
  return record.status === 200 && record.error === undefined;
}

/** Parse a client's output line; undefined for anything that is not a record. */
export function parseRecord(line: string): ClientRecord | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const r = JSON.parse(line) as Partial<ClientRecord>;
    if (typeof r.seq !== 'number' || (r.attempt !== 1 && r.attempt !== 2) || typeof r.start !== 'number' || typeof r.end !== 'number') return undefined;
    return r as ClientRecord;
  } catch {
    return undefined;
  }
}

/**
 * Milliseconds from `at` to the first successful answer from `by` (`pop/node`) to a request sent
 * after `at`, or undefined when there is none. This is the failover time of an event at `at`
 * whose clients should end up at `by`. (Requests sent before count for nothing: a frozen PoP
 * answers those it had queued the moment it thaws, whatever the routes say by then.)
 */
export function firstAnswerFrom(records: readonly ClientRecord[], at: number, by: string): number | undefined {
  let first: number | undefined;
  for (const r of records) if (r.start > at && r.by === by && succeeded(r) && (first === undefined || r.end < first)) first = r.end;
  return first === undefined ? undefined : first - at;
}

/** First attempts (not retries) that started within [from, to] and failed. */
export function failedRequests(records: readonly ClientRecord[], from = -Infinity, to = Infinity): ClientRecord[] {
  return records.filter((r) => r.attempt === 1 && r.start >= from && r.start <= to && !succeeded(r));
}

/** Requests (by `seq`) that started within [from, to] and failed on every attempt. */
export function unrecovered(records: readonly ClientRecord[], from = -Infinity, to = Infinity): number[] {
  const ok = new Set(records.filter(succeeded).map((r) => r.seq));
  return [...new Set(failedRequests(records, from, to).map((r) => r.seq))].filter((seq) => !ok.has(seq));
}

/** An interval of time, in the records' milliseconds. */
export interface Window {
  from: number;
  to: number;
}

/**
 * When a client's traffic moved from `fromBy` to `toBy`, as the client saw it: between the start
 * of the last request `fromBy` answered and the start of the first one `toBy` answered (after
 * `after`). The route changed at the router somewhere in between.
 */
export function moveWindow(records: readonly ClientRecord[], fromBy: string, toBy: string, after: number): Window | undefined {
  let to: number | undefined;
  for (const r of records) if (r.start > after && r.by === toBy && succeeded(r) && (to === undefined || r.start < to)) to = r.start;
  if (to === undefined) return undefined;
  let from = after;
  for (const r of records) if (r.by === fromBy && succeeded(r) && r.start < to && r.start > from) from = r.start;
  return { from, to };
}

/**
 * Every move of a client's traffic after `after`, in order: each time the PoP that answered
 * changed, between the start of the last request the old one answered and the start of the first
 * one the new one answered (as `moveWindow`, for any number of moves).
 */
export function moves(records: readonly ClientRecord[], after: number): (Window & { fromBy: string; toBy: string })[] {
  const answers = records.filter((r) => r.start > after && succeeded(r)).sort((a, b) => a.start - b.start);
  const found: (Window & { fromBy: string; toBy: string })[] = [];
  for (let i = 1; i < answers.length; i++) {
    const [prev, next] = [answers[i - 1]!, answers[i]!];
    if (prev.by !== next.by) found.push({ from: prev.start, to: next.start, fromBy: prev.by ?? '?', toBy: next.by ?? '?' });
  }
  return found;
}

/**
 * A request caught mid-connection by a route move: its connection was opened towards the old PoP
 * and its next packets went to the new one, which knows no such connection and resets it
 * (notes/anycast-lab.md, "Connections do not survive a move"). It was in flight during the
 * move's window, on a new connection, and was reset before any answer.
 */
export function caughtByMove(r: ClientRecord, move: Window): boolean {
  return r.error === 'ECONNRESET' && r.status === undefined && !r.reused && r.start <= move.to && r.end >= move.from;
}

/** Failed first attempts within [from, to] that no route move in `moves` explains. */
export function unexplainedFailures(records: readonly ClientRecord[], moves: readonly (Window | undefined)[], from = -Infinity, to = Infinity): ClientRecord[] {
  const windows = moves.filter((m): m is Window => m !== undefined);
  return failedRequests(records, from, to).filter((r) => !windows.some((w) => caughtByMove(r, w)));
}

/** How many successful answers each PoP gave among requests that started within [from, to]. */
export function answersBy(records: readonly ClientRecord[], from = -Infinity, to = Infinity): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of records) if (succeeded(r) && r.start >= from && r.start <= to) counts[r.by ?? '?'] = (counts[r.by ?? '?'] ?? 0) + 1;
  return counts;
}

/** The value at quantile `q` (0..1) by the nearest-rank method; undefined for no values. */
export function quantile(values: readonly number[], q: number): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil(q * sorted.length));
  return sorted[rank - 1];
}

/**
 * An account of failures for assertion messages, times in ms relative to `at`:
 * `ECONNRESET×2, timeout×1: #12 +3..+5 ECONNRESET (fresh connection), …`.
 */
export function describeFailures(records: readonly ClientRecord[], at = 0): string {
  const counts = new Map<string, number>();
  for (const r of records) {
    const what = r.error ?? `status ${r.status}`;
    counts.set(what, (counts.get(what) ?? 0) + 1);
  }
  const each = records.slice(0, 10).map((r) => describeRecord(r, at));
  return `${[...counts].map(([what, n]) => `${what}×${n}`).join(', ')}: ${each.join(', ')}`;
}

/**
 * Answers for assertion messages (an answer from a PoP that should not have given it), times in
 * ms relative to `at`: `3 answers: #40 +1210..+1213 status 200 from pop1/edge1 (fresh connection), …`.
 */
export function describeAnswers(records: readonly ClientRecord[], at = 0): string {
  return `${records.length} answer${records.length === 1 ? '' : 's'}: ${records
    .slice(0, 10)
    .map((r) => describeRecord(r, at))
    .join(', ')}`;
}

function describeRecord(r: ClientRecord, at: number): string {
  const rel = (t: number): string => `${t - at >= 0 ? '+' : ''}${Math.round(t - at)}`;
  return `#${r.seq}${r.attempt === 2 ? ' retry' : ''} ${rel(r.start)}..${rel(r.end)} ${r.error ?? `status ${r.status}`}${r.by === undefined ? '' : ` from ${r.by}`} (${r.reused ? 'reused' : 'fresh'} connection${r.connected === false ? ', never connected' : ''})`;
}
