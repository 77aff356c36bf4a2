/**
 * The publisher API: `PUT /_cdn/assets/{path}` stores a new version (Bearer publish token),
 * `DELETE /_cdn/assets/{path}` removes it. Content type is sniffed from the bytes by the store;
 * the client's Content-Type is ignored.
 */
import type { Hono } from 'hono';
import { requireBearer } from '../../src/auth.js';
import { clientError } from '../../src/errors.js';
import { cacheControlProblem } from '../../src/http/cache-control.js';
import { evaluateConditional } from '../../src/http/conditional.js';
import type { HeaderGetter } from '../../src/http/headers.js';
import { rawRequestPath, type OriginDeps, type OriginEnv } from '../app.js';
import { assetPathOf } from '../request-path.js';
import type { AssetMeta, Precondition } from '../store/asset-store.js';

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

export function registerAssetRoutes(app: Hono<OriginEnv>, deps: OriginDeps): void {
  const { config, store } = deps;

  app.put(`${PREFIX}*`, async (c) => {
    c.set('outcome', 'upload');
    const { path, tags, cacheControl } = checkUploadHeaders(config, (name) => c.req.header(name), rawRequestPath(c));
    // A PUT without a body stores an empty file, as `curl -T /dev/null` expects.
    const body: AsyncIterable<Uint8Array> = (c.req.raw.body as unknown as AsyncIterable<Uint8Array> | null) ?? emptyBody();
    const precondition = writePrecondition('PUT', c.req.raw.headers);
    precondition(await store.head(path)); // before the body; the store checks again as it replaces the version
    // Created or replaced is what the store saw at the switch: of concurrent uploads to a new path, one creates it.
    let existed = false;
    const meta = await store.put(path, body, {
      cacheControl,
      tags,
      maxBytes: config.maxUploadBytes,
      now: deps.now(),
      precondition: (current) => {
        precondition(current);
        existed = current !== undefined;
      },
    });
    deps.logger.info({ path, size: meta.size, etag: meta.etag }, existed ? 'asset replaced' : 'asset created');
    return c.json(assetJson(meta), existed ? 200 : 201, { etag: meta.etag });
  });

  app.delete(`${PREFIX}*`, async (c) => {
    c.set('outcome', 'delete');
    requireBearer(c.req.header('authorization'), config.publishToken, 'publish');
    const path = assetPathOf(rawRequestPath(c), PREFIX);
    const removed = await store.delete(path, writePrecondition('DELETE', c.req.raw.headers));
    if (removed === undefined) return c.json({ error: 'not_found', message: `no asset at ${path}` }, 404);
    deps.logger.info({ path }, 'asset deleted');
    return c.body(null, 204);
  });
}
