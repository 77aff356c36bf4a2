/**
 * Content: `GET`/`HEAD /{path}` serves an original, or with image parameters a variant generated
 * once and stored. Conditional and range requests are answered here (src/serve/respond.ts); a 304
 * for an original never opens its bytes. Framework-free, like the edge: the origin's listener
 * (origin/app.ts) hands content requests here without a router or WHATWG Request/Response, and
 * writes the reply to Node's response directly.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { assetPathToUrl } from '../../src/asset-path.js';
import { CdnError, clientError, isCdnError } from '../../src/errors.js';
import type { HeaderGetter } from '../../src/http/headers.js';
import { nodeRequestHeaders } from '../../src/http/request-headers.js';
import { negotiates } from '../../src/image/negotiate.js';
import { parseImageParams, type ImageRequest } from '../../src/image/params.js';
import { verifySignature } from '../../src/image/sign.js';
import { isImageType, isXmlType } from '../../src/sniff.js';
import { jsonReply, type Reply } from '../../src/serve/reply.js';
import { answer, type Representation } from '../../src/serve/respond.js';
import type { OriginDeps } from '../app.js';
import { assetPathOf, refuseDotSegments } from '../request-path.js';
import { isFingerprinted } from '../fingerprint.js';
import type { AssetMeta, AssetStore } from '../store/asset-store.js';

/**
 * Served with every original SVG, and every other XML document (see isXmlType): it renders as an
 * image, but scripts, event handlers, external loads and navigation are all forbidden even when a
 * browser opens the URL directly.
 */
export const SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox";

export interface ContentRequest {
  method: 'GET' | 'HEAD';
  /** The request path as sent (percent-encoded, dot segments unresolved). */
  path: string;
  /** The query string without `?` ('' when none). */
  query: string;
  headers: IncomingHttpHeaders;
}

/** A content answer with what the request log and metrics say of it. */
export interface ContentAnswer {
  reply: Reply;
  /** Cache outcome for the log: original, variant-generated, variant-stored, not-modified, not-found… */
  outcome: string;
  /** Body bytes sent. */
  bytes: number;
  /** Where a new variant's time went (see RenderedVariant.phases). */
  phases?: Record<string, number>;
}

export async function serveContent(deps: OriginDeps, req: ContentRequest): Promise<ContentAnswer> {
  refuseDotSegments(req.path);
  // The site root names no asset (there is no index file): a plain 404, as for any missing one.
  if (req.path === '/') return notFound('/ (assets are served at /{path})');
  const path = assetPathOf(req.path);
  const query = new URLSearchParams(req.query);
  const image = parseImageParams(query, {
    maxOutputDimension: deps.config.images.maxOutputDimension,
    allowedWidths: deps.config.images.allowedWidths,
  });
  // A `sig` on a URL without image parameters is ignored: there is nothing to protect.
  if (image !== undefined) verifySignature(path, query, deps.config.images.signingKeys);
  const headers = nodeRequestHeaders(req.headers);
  // An original replaced between choosing its headers and opening its bytes is answered again
  // from the new metadata, so headers and bytes always belong to one version.
  for (let attempt = 1; ; attempt++) {
    const meta = await deps.store.head(path);
    if (meta === undefined) return notFound(path);
    if (image !== undefined) return serveVariant(deps, req.method, headers, meta, image);
    try {
      return await serveOriginal(deps, req.method, headers, meta);
    } catch (err) {
      if (!(err instanceof VersionChanged)) throw err;
      if (attempt === MAX_VERSION_ATTEMPTS) throw sourceChanged(path);
    }
  }
}

/** Answers tried for an original that keeps being replaced while it is read, before a 503. */
const MAX_VERSION_ATTEMPTS = 3;

/** Thrown when the bytes opened for an original are not those of the metadata its headers came from. */
class VersionChanged extends Error {}

function sourceChanged(path: string): CdnError {
  return new CdnError('source_changed', 'internal', `${path} changed while it was being read`, { status: 503, headers: { 'Retry-After': '1' } });
}

function baseHeaders(deps: OriginDeps, meta: AssetMeta): Record<string, string> {
  const cacheControl = meta.cacheControl ?? (isFingerprinted(meta.path) ? deps.config.immutableCacheControl : deps.config.defaultCacheControl);
  return {
    'cache-control': cacheControl,
    'last-modified': new Date(meta.lastModified).toUTCString(),
    'surrogate-key': ['/' + assetPathToUrl(meta.path), ...meta.tags].join(' '),
    'x-content-type-options': 'nosniff',
  };
}

async function serveOriginal(deps: OriginDeps, method: string, req: HeaderGetter, meta: AssetMeta): Promise<ContentAnswer> {
  const headers: Record<string, string> = { ...baseHeaders(deps, meta), 'content-type': meta.contentType, etag: meta.etag };
  if (isXmlType(meta.contentType)) headers['content-security-policy'] = SVG_CSP;
  const rep: Representation = {
    headers,
    size: meta.size,
    etag: meta.etag,
    lastModified: meta.lastModified,
    body: async (range) => {
      let found: Awaited<ReturnType<AssetStore['read']>>;
      try {
        found = await deps.store.read(meta.path, range);
      } catch (err) {
        // The range was checked against `meta`: refused now, it is another version's size.
        if (isCdnError(err) && err.code === 'range_not_satisfiable') throw new VersionChanged();
        throw err;
      }
      if (found === undefined) throw clientError('not_found', `no asset at ${meta.path}`, { status: 404 });
      if (found.meta.sha256 !== meta.sha256) {
        found.body.destroy();
        throw new VersionChanged();
      }
      return found.body;
    },
  };
  const { reply, outcome, bytes } = await answer(method, req, rep);
  return { reply, outcome: outcome === 'full' || outcome === 'partial' || outcome === 'head' ? 'original' : outcome, bytes };
}

/** 404 for a path with no asset; cacheable for a minute, so a CDN in front absorbs repeats. */
function notFound(what: string): ContentAnswer {
  const reply = jsonReply(404, { error: 'not_found', message: `no asset at ${what}` }, { 'cache-control': 'public, max-age=60' });
  return { reply, outcome: 'not-found', bytes: (reply.body as Buffer).length };
}

async function serveVariant(deps: OriginDeps, method: string, req: HeaderGetter, meta: AssetMeta, image: ImageRequest): Promise<ContentAnswer> {
  if (!isImageType(meta.contentType)) {
    throw clientError('not_an_image', `${meta.path} is ${meta.contentType}, not an image: image parameters cannot apply`, { status: 415, field: 'path' });
  }
  const variant = await deps.variants.render(meta, image.params, req.get('accept') ?? undefined);
  const headers: Record<string, string> = {
    ...baseHeaders(deps, meta),
    'content-type': variant.meta.contentType,
    etag: variant.meta.etag,
  };
  if (negotiates(image.params.fmt)) headers['vary'] = 'Accept';
  const rep: Representation = {
    headers,
    size: variant.meta.size,
    etag: variant.meta.etag,
    lastModified: meta.lastModified,
    body: variant.data,
  };
  const { reply, bytes } = await answer(method, req, rep);
  const served: ContentAnswer = { reply, outcome: variant.generated ? 'variant-generated' : 'variant-stored', bytes };
  if (variant.phases !== undefined) served.phases = variant.phases;
  return served;
}
