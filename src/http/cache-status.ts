/**
 * The Cache-Status response header (RFC 9211): one list member per cache that handled the request,
 * nearest the origin first. This module formats anycdn's member and appends it to what upstream
 * caches (a shield, a peer) already wrote.
 */
import { isSfToken, serializeSfString, serializeSfTokenOrString } from './structured-fields.js';

/** RFC 9211 §2.2: why the request went forward. */
export type CacheStatusFwd = 'bypass' | 'method' | 'uri-miss' | 'vary-miss' | 'miss' | 'request' | 'stale' | 'partial';

export interface CacheStatusEntry {
  /** The cache's name (RFC 9211 §2): a token if possible, else a string. */
  cache: string;
  /** RFC 9211 §2.1: the response was satisfied by the cache without going forward. */
  hit?: boolean;
  /** RFC 9211 §2.2. */
  fwd?: CacheStatusFwd;
  /** RFC 9211 §2.3: the status of the forwarded response (e.g. 304 after revalidation). */
  fwdStatus?: number;
  /** RFC 9211 §2.4: remaining freshness in seconds; negative when stale. */
  ttlSec?: number;
  /** RFC 9211 §2.5: the forwarded response was stored. */
  stored?: boolean;
  /** RFC 9211 §2.6: the request was collapsed with another one. */
  collapsed?: boolean;
  /** RFC 9211 §2.7: the cache key. */
  key?: string;
  /** RFC 9211 §2.8: implementation-specific detail, e.g. a not-stored reason. */
  detail?: string;
}

/** RFC 8941 §3.3.1: the range of an sf-integer. */
const SF_INTEGER_MAX = 999_999_999_999_999;

export function sfInteger(n: number): string {
  return String(Math.max(-SF_INTEGER_MAX, Math.min(SF_INTEGER_MAX, Math.trunc(n))));
}

/**
 * Formats one Cache-Status member, parameters in RFC 9211 order, e.g. `anycdn; hit; ttl=30`,
 * `anycdn; fwd=miss; stored`, `anycdn; fwd=stale; fwd-status=304`, `anycdn; fwd=miss; detail=private`.
 * `hit`, `stored` and `collapsed` appear only when true (an absent Boolean parameter is false);
 * `ttl` is truncated to whole seconds; `key` is always a string; `detail` a token when it is one.
 */
export function formatCacheStatus(entry: CacheStatusEntry): string {
  const parts = [isSfToken(entry.cache) ? entry.cache : serializeSfString(entry.cache)];
  if (entry.hit === true) parts.push('hit');
  if (entry.fwd !== undefined) parts.push(`fwd=${entry.fwd}`);
  if (entry.fwdStatus !== undefined) parts.push(`fwd-status=${sfInteger(entry.fwdStatus)}`);
  if (entry.ttlSec !== undefined && Number.isFinite(entry.ttlSec)) parts.push(`ttl=${sfInteger(entry.ttlSec)}`);
  if (entry.stored === true) parts.push('stored');
  if (entry.collapsed === true) parts.push('collapsed');
  if (entry.key !== undefined) parts.push(`key=${serializeSfString(entry.key)}`);
  if (entry.detail !== undefined) parts.push(`detail=${serializeSfTokenOrString(entry.detail)}`);
  return parts.join('; ');
}

/**
 * Appends this cache's member after the members upstream caches wrote (RFC 9211 §2: "the first
 * member is the cache closest to the origin", each cache appends its own).
 */
export function appendCacheStatus(existing: string | null | undefined, member: string): string {
  const upstream = existing?.trim();
  return upstream ? `${upstream}, ${member}` : member;
}
