/**
 * The publisher API (Bearer publish token): `PUT /_cdn/assets/{path}` stores a new version,
 * `DELETE /_cdn/assets/{path}` removes it, `GET /_cdn/assets?prefix=P&after=PATH&limit=N` lists
 * what is stored. Content type is sniffed from the bytes by the store; the client's Content-Type
 * is ignored.
 *
 * A new version, a new asset and a delete purge what the change made stale at every edge
 * (origin/purge/asset-purge.ts), logged after the store switched and before the answer, which
 * names the purge. An upload identical to the current version (bytes, Cache-Control, tags) is a
 * no-op: `200` with `"unchanged": true`, no new version, no purge — unless an earlier change of
 * that path could not log its purge (origin/purge/change-purges.ts): repeating the request logs it.
 */
import type { Hono } from 'hono';
import { requireBearer } from '../../src/auth.js';
import { clientError } from '../../src/errors.js';
import { cacheControlProblem } from '../../src/http/cache-control.js';
import { evaluateConditional } from '../../src/http/conditional.js';
import type { HeaderGetter } from '../../src/http/headers.js';
import { validateAssetPath } from '../../src/asset-path.js';
import { rawRequestPath, type OriginDeps, type OriginEnv } from '../app.js';
import type { PurgeEntry, PurgeSource } from '../purge/purge-log-format.js';
import { assetPathOf } from '../request-path.js';
import type { AssetMeta, Precondition } from '../store/asset-store.js';
import { sameVersion } from '../store/asset-store-common.js';

const PREFIX = '/_cdn/assets/';
const MAX_TAGS = 64;
const TAG = /^[\x21-\x7e]{1,256}$/;

/** Surrogate-Key request header: space-separated tags of visible ASCII. */
export function parseSurrogateKeys(header: string | null | undefined): string[] {
  if (header === null || header === undefined || header.trim() === '') return [];
  // Space-separated; a field sent twice arrives joined with ", ".
  const tags = [...new Set(header.trim().split(/[\s,]+/).filter((t) => t !== ''))];
  if (tags.length > MAX_TAGS) throw clientError('invalid_header', `Surrogate-Key may hold at most ${MAX_TAGS} tags, got ${tags.length}`, { field: 'surrogate-key' });
  for (const t of tags) {
    if (!TAG.test(t)) throw clientError('invalid_header', `Surrogate-Key tags are 1–256 visible ASCII characters, got ${JSON.stringify(t)}`, { field: 'surrogate-key' });
  }
  return tags;
}

function parseCacheControlHeader(header: string | null | undefined): string | undefined {
  if (header === null || header === undefined || header.trim() === '') return undefined;
  if (header.length > 1024 || !/^[\x20-\x7e]+$/.test(header)) {
    throw clientError('invalid_header', 'Cache-Control must be at most 1024 visible ASCII characters', { field: 'cache-control' });
  }
  // Stored and sent to every cache and browser as given: a value they would misread is refused now.
  const problem = cacheControlProblem(header);
  if (problem !== undefined) throw clientError('invalid_header', `Cache-Control: ${problem}`, { field: 'cache-control' });
  return header.trim();
}

async function* emptyBody(): AsyncIterable<Uint8Array> {}

/**
 * If-Match, If-None-Match and If-Unmodified-Since of a PUT or DELETE (RFC 9110 §13.1), checked
 * against the path's current version: `If-None-Match: *` creates only, `If-Match: "etag"`
 * replaces only the version the publisher saw. Failing is a 412 and changes nothing.
 */
export function writePrecondition(method: string, headers: HeaderGetter): Precondition {
  return (current) => {
    const validators = current === undefined ? null : { etag: current.etag, lastModified: current.lastModified };
    if (evaluateConditional(method, headers, validators) === 'precondition-failed') {
      throw clientError('precondition_failed', `a precondition failed: the asset ${current === undefined ? 'does not exist' : `is at ${current.etag}`}`, { status: 412 });
    }
  };
}

export function assetJson(meta: AssetMeta): Record<string, unknown> {
  return {
    path: meta.path,
    size: meta.size,
    contentType: meta.contentType,
    etag: meta.etag,
    sha256: meta.sha256,
    lastModified: new Date(meta.lastModified).toISOString(),
    cacheControl: meta.cacheControl ?? null,
    tags: meta.tags,
  };
}

/**
 * The query of a listing, checked: a prefix (one leading `/` allowed, none of the parts an asset
 * path may not have), an `after` that is an asset path, a limit from 1 to MAX_LIST_LIMIT.
 */
export function listQuery(prefix: string | undefined, after: string | undefined, limit: string | undefined): { prefix: string; after: string | undefined; limit: number } {
  const p = (prefix ?? '').replace(/^\//, '');
  if (p !== '') {
    try {
      // A prefix may end in a partial segment or a `/`: what is before them must be a path.
      validateAssetPath(p.endsWith('/') ? p.slice(0, -1) : p);
    } catch (err) {
      throw clientError('invalid_param', `prefix: ${(err as Error).message}`, { field: 'prefix' });
    }
  }
  if (after !== undefined) {
    try {
      validateAssetPath(after);
    } catch (err) {
      throw clientError('invalid_param', `after: ${(err as Error).message}`, { field: 'after' });
    }
  }
  const n = limit === undefined ? DEFAULT_LIST_LIMIT : /^\d{1,6}$/.test(limit) ? Number(limit) : NaN;
  if (!(n >= 1 && n <= MAX_LIST_LIMIT)) {
    throw clientError('invalid_param', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}, got ${JSON.stringify((limit ?? '').slice(0, 40))}`, { field: 'limit' });
  }
  return { prefix: p, after, limit: n };
}

/** What an upload's request head says, checked. */
export interface UploadHead {
  path: string;
  tags: string[];
  cacheControl: string | undefined;
}

/**
 * What an upload is refused for before its body: no or a wrong token (401/403), a declared size
 * over the limit (413), a path or a Surrogate-Key or Cache-Control that is not allowed (400).
 * Throws; the route checks it, and so does `Expect: 100-continue` handling, so a client that asks
 * first never sends a body that would be refused for its head.
 */
export function checkUploadHeaders(config: Pick<OriginDeps['config'], 'publishToken' | 'maxUploadBytes'>, header: (name: string) => string | undefined, rawPath: string): UploadHead {
  requireBearer(header('authorization'), config.publishToken, 'publish');
  const contentLength = header('content-length');
  if (contentLength !== undefined && Number(contentLength) > config.maxUploadBytes) {
    throw clientError('payload_too_large', `upload of ${contentLength} bytes is over the limit of ${config.maxUploadBytes} bytes`, { status: 413, field: 'content-length' });
  }
  return {
    path: assetPathOf(rawPath, PREFIX),
    tags: parseSurrogateKeys(header('surrogate-key')),
    cacheControl: parseCacheControlHeader(header('cache-control')),
  };
}

/** Whether a request is an upload (`PUT /_cdn/assets/…`), by its method and raw target. */
export function isUpload(method: string | undefined, target: string | undefined): boolean {
  return method === 'PUT' && (target ?? '').startsWith(PREFIX);
}

/** Most assets in one listing, and the default. */
export const MAX_LIST_LIMIT = 10_000;
const DEFAULT_LIST_LIMIT = 1000;

export function registerAssetRoutes(app: Hono<OriginEnv>, deps: OriginDeps): void {
  const { config, store } = deps;

  /** Log the purge of what changing `path` made stale; resolves once it is durable (503 when the log fails: the change is stored, its purge owed). */
  const purgeChange = (path: string, source: PurgeSource): Promise<PurgeEntry> => deps.purges.changes.purge(path, source);

  app.get('/_cdn/assets', async (c) => {
    c.set('outcome', 'list');
    requireBearer(c.req.header('authorization'), config.publishToken, 'publish');
    const { prefix, after, limit } = listQuery(c.req.query('prefix'), c.req.query('after'), c.req.query('limit'));
    const page = await store.list({ prefix, after, limit });
    return c.json({
      assets: page.assets.map(assetJson),
      next: page.next ?? null,
    });
  });

  app.put(`${PREFIX}*`, async (c) => {
    c.set('outcome', 'upload');
    const { path, tags, cacheControl } = checkUploadHeaders(config, (name) => c.req.header(name), rawRequestPath(c));
    // A PUT without a body stores an empty file, as `curl -T /dev/null` expects.
    const body: AsyncIterable<Uint8Array> = (c.req.raw.body as unknown as AsyncIterable<Uint8Array> | null) ?? emptyBody();
    const precondition = writePrecondition('PUT', c.req.raw.headers);
    precondition(await store.head(path)); // before the body; the store checks again as it replaces the version
    // Created, replaced or unchanged is what the store saw at the switch: of concurrent uploads to a new path, one creates it.
    let previous: AssetMeta | undefined;
    const meta = await store.put(path, body, {
      cacheControl,
      tags,
      maxBytes: config.maxUploadBytes,
      now: deps.now(),
      keepUnchanged: true,
      precondition: (current) => {
        precondition(current);
        previous = current;
      },
    });
    const existed = previous !== undefined;
    if (previous !== undefined && sameVersion(previous, meta)) {
      deps.logger.info({ path, etag: meta.etag }, 'asset unchanged');
      // The version that is stored may be one whose purge was never logged: this retry logs it.
      const owed = deps.purges.changes.owes(path) ? await purgeChange(path, 'upload') : undefined;
      return c.json({ ...assetJson(meta), unchanged: true, purge: owed === undefined ? null : { id: owed.id, seq: owed.seq } }, 200, { etag: meta.etag });
    }
    const purge = await purgeChange(path, 'upload');
    deps.logger.info({ path, size: meta.size, etag: meta.etag, purge: purge.id }, existed ? 'asset replaced' : 'asset created');
    return c.json({ ...assetJson(meta), unchanged: false, purge: { id: purge.id, seq: purge.seq } }, existed ? 200 : 201, { etag: meta.etag });
  });

  app.delete(`${PREFIX}*`, async (c) => {
    c.set('outcome', 'delete');
    requireBearer(c.req.header('authorization'), config.publishToken, 'publish');
    const path = assetPathOf(rawRequestPath(c), PREFIX);
    const removed = await store.delete(path, writePrecondition('DELETE', c.req.raw.headers));
    if (removed === undefined) {
      // Deleted before, by a request whose purge could not be logged: this retry logs it.
      if (deps.purges.changes.owes(path)) {
        const owed = await purgeChange(path, 'delete');
        return c.body(null, 204, { 'x-purge-id': owed.id });
      }
      return c.json({ error: 'not_found', message: `no asset at ${path}` }, 404);
    }
    const purge = await purgeChange(path, 'delete');
    deps.logger.info({ path, purge: purge.id }, 'asset deleted');
    return c.body(null, 204, { 'x-purge-id': purge.id });
  });
}
