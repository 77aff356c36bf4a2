/**
 * The purge log's file format (version 1), as pure functions: encoding, decoding, reading a whole
 * file back after a crash, and the compaction rule. The I/O is in purge-log.ts.
 *
 * The file is JSON lines. The first line is the header, written whole (temp file, fsync, rename):
 *
 *     {"anycdnPurgeLog":1,"log":"3f9a1c0b7d2e","firstSeq":1}
 *
 * `log` names this log (random, made with it: a purge id says which log it belongs to, and an
 * edge can tell a new log from the one it followed); `firstSeq` is the sequence number of the
 * first entry the file still holds, or would hold (entries before it were compacted away). Every
 * further line is one purge:
 *
 *     {"seq":7,"id":"3f9a1c0b7d2e-7","time":1767225600000,"source":"api","soft":false,"all":false,
 *      "urls":[{"path":"/a.jpg"}],"prefixes":[{"host":"cdn.example","path":"/photos"}],"tags":[],
 *      "sum":"1c291ca3"}
 *
 * `sum` is the CRC-32 (hex, 8 digits) of the line's bytes up to `,"sum"` followed by `}`: the line
 * as the purge stream sends it (`wireOf`). Entries follow each other with no gap from `firstSeq`.
 *
 * After a crash the file may end in a torn write: a last line without its newline, or lines of
 * the last, unacknowledged batch that fail their sum. `scanLog` keeps the entries up to the first
 * bad line and drops the rest, as long as nothing valid follows it: an entry is acknowledged only
 * after the fsync that also made every byte before it durable, so a bad line followed by a valid
 * entry is damage, not a crash, and is refused rather than silently losing acknowledged purges.
 * Readers accept the previous format version too (none before 1).
 */
import { crc32 } from 'node:zlib';
import type { Purge, PurgeTarget } from '../../src/purge/purge-request.js';

export const PURGE_LOG_VERSION = 1;
/** Versions this code reads: the current one and the one before it. */
export const READABLE_VERSIONS: readonly number[] = [PURGE_LOG_VERSION, PURGE_LOG_VERSION - 1].filter((v) => v >= 1);

/** What made a purge: the purge API, or an upload or delete that changed an asset. */
export type PurgeSource = 'api' | 'upload' | 'delete';

export interface PurgeEntry extends Purge {
  seq: number;
  /** `<log>-<seq>`: names the purge across logs. */
  id: string;
  /** When it was appended, ms since the epoch. */
  time: number;
  source: PurgeSource;
}

export interface PurgeLogHeader {
  version: number;
  log: string;
  firstSeq: number;
}

const SUM = /,"sum":"([0-9a-f]{8})"\}$/;
const SOURCES: readonly string[] = ['api', 'upload', 'delete'];
const LOG_ID = /^[0-9a-f]{12}$/;

export function encodeHeader(header: Omit<PurgeLogHeader, 'version'>): string {
  return `${JSON.stringify({ anycdnPurgeLog: PURGE_LOG_VERSION, log: header.log, firstSeq: header.firstSeq })}\n`;
}

/** The header of a log file, or a message saying what is wrong with it. */
export function decodeHeader(line: string): PurgeLogHeader | string {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return 'the first line is not a purge log header';
  }
  const h = value as Record<string, unknown> | null;
  if (typeof h !== 'object' || h === null || typeof h.anycdnPurgeLog !== 'number') return 'the first line is not a purge log header';
  if (!READABLE_VERSIONS.includes(h.anycdnPurgeLog)) {
    return `format version ${h.anycdnPurgeLog} is not one this anycdn reads (${READABLE_VERSIONS.join(', ')})`;
  }
  if (typeof h.log !== 'string' || !LOG_ID.test(h.log) || !isSeq(h.firstSeq) || h.firstSeq < 1) return 'the header is damaged';
  return { version: h.anycdnPurgeLog, log: h.log, firstSeq: h.firstSeq };
}

/** One entry as its line in the file (with `sum` and the newline). */
export function encodeEntry(entry: PurgeEntry): string {
  const wire = JSON.stringify({
    seq: entry.seq,
    id: entry.id,
    time: entry.time,
    source: entry.source,
    soft: entry.soft,
    all: entry.all,
    urls: entry.urls.map(target),
    prefixes: entry.prefixes.map(target),
    tags: entry.tags,
  });
  return `${wire.slice(0, -1)},"sum":"${sumOf(wire)}"}\n`;
}

/** The entry of a line (without its newline) when it is whole and its sum checks; else undefined. */
export function decodeEntry(line: string, log: string): PurgeEntry | undefined {
  const m = SUM.exec(line);
  if (m === null) return undefined;
  const wire = wireOf(line);
  if (sumOf(wire) !== m[1]) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(wire);
  } catch {
    return undefined;
  }
  const e = value as Record<string, unknown>;
  const valid =
    typeof e === 'object' &&
    e !== null &&
    isSeq(e.seq) &&
    e.id === `${log}-${e.seq}` &&
    Number.isSafeInteger(e.time) &&
    typeof e.source === 'string' &&
    SOURCES.includes(e.source) &&
    typeof e.soft === 'boolean' &&
    typeof e.all === 'boolean' &&
    isTargets(e.urls) &&
    isTargets(e.prefixes) &&
    Array.isArray(e.tags) &&
    e.tags.every((t) => typeof t === 'string');
  return valid ? (e as unknown as PurgeEntry) : undefined;
}

/** A line (with or without its newline) as the purge stream sends it: without `sum`. */
export function wireOf(line: string): string {
  const end = line.endsWith('\n') ? line.length - 1 : line.length;
  const at = line.lastIndexOf(',"sum":"', end);
  return `${line.slice(0, at)}}`;
}

/** What a log file holds, as read back at start-up. */
export interface ScannedLog {
  header: PurgeLogHeader;
  /** The entries' lines, in order, each with its newline. */
  lines: string[];
  /** Bytes of the file that hold the header and these lines: the file is cut to this length. */
  goodBytes: number;
  /** Bytes after them that were dropped (a torn last write); 0 when the file ended cleanly. */
  droppedBytes: number;
}

/** Read a whole log file back; a string says why it cannot be used. */
export function scanLog(text: string): ScannedLog | string {
  const firstNewline = text.indexOf('\n');
  if (firstNewline < 0) return 'the file has no complete header line';
  const header = decodeHeader(text.slice(0, firstNewline));
  if (typeof header === 'string') return header;
  const lines: string[] = [];
  let at = firstNewline + 1;
  let goodBytes = Buffer.byteLength(text.slice(0, at));
  let expected = header.firstSeq;
  while (at < text.length) {
    const end = text.indexOf('\n', at);
    if (end < 0) break; // a last line without its newline: torn
    const line = text.slice(at, end);
    const entry = decodeEntry(line, header.log);
    if (entry === undefined) break;
    if (entry.seq !== expected) return `entry ${entry.seq} where ${expected} was expected: the file is damaged`;
    lines.push(`${line}\n`);
    goodBytes += Buffer.byteLength(line) + 1;
    expected += 1;
    at = end + 1;
  }
  // Nothing valid may follow a bad line (see the module comment).
  for (const rest of text.slice(at).split('\n').slice(1)) {
    const entry = decodeEntry(rest, header.log);
    if (entry !== undefined) return `entry ${expected} is damaged but entry ${entry.seq} after it is whole: the file is damaged, not torn by a crash`;
  }
  return { header, lines, goodBytes, droppedBytes: Buffer.byteLength(text) - goodBytes };
}

/** How much of the log compaction keeps. */
export interface RetentionLimits {
  /** Newest entries kept at most. */
  entries: number;
  /** Bytes of entry lines kept at most. */
  bytes: number;
}

/** Compaction starts once the log is this much over a limit, so it does not run on every append. */
export const COMPACTION_SLACK = 1.25;

/**
 * The compaction rule: when the entries (sizes in bytes, oldest first) exceed either limit by a
 * quarter, how many of the oldest to drop so that both are met again; 0 when no compaction is due.
 */
export function compactionCut(sizes: readonly number[], limits: RetentionLimits): number {
  const total = sizes.reduce((n, s) => n + s, 0);
  const due = sizes.length > limits.entries * COMPACTION_SLACK || total > limits.bytes * COMPACTION_SLACK;
  if (!due) return 0;
  let cut = Math.max(0, sizes.length - limits.entries);
  let bytes = sizes.slice(cut).reduce((n, s) => n + s, 0);
  while (bytes > limits.bytes && cut < sizes.length) bytes -= sizes[cut++]!;
  return cut;
}

function sumOf(wire: string): string {
  return crc32(wire).toString(16).padStart(8, '0');
}

function target(t: PurgeTarget): PurgeTarget {
  return t.host === undefined ? { path: t.path } : { host: t.host, path: t.path };
}

function isSeq(value: unknown): value is number {
  return Number.isSafeInteger(value) && (value as number) >= 0;
}

function isTargets(value: unknown): value is PurgeTarget[] {
  return (
    Array.isArray(value) &&
    value.every((t) => typeof t === 'object' && t !== null && typeof t.path === 'string' && t.path.startsWith('/') && (t.host === undefined || typeof t.host === 'string'))
  );
}
