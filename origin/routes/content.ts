/**
 * Content: `GET`/`HEAD /{path}` serves an original, or with image parameters a variant generated
 * once and stored; `/` and `/dir/` serve the folder's index.html, `/dir` redirects there when only
 * the index exists, and a missing asset is a 404 whose body is the root's 404.html when there is
 * one (which URL tries which assets: origin/site-paths.ts). Conditional and range requests are
 * answered here (src/serve/respond.ts); a 304 for an original never opens its bytes.
 * Framework-free, like the edge: the origin's listener
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
import { refuseDotSegments } from '../request-path.js';
import { contentCandidates, imageSourcePath, INDEX_DOCUMENT, NOT_FOUND_DOCUMENT, NOT_FOUND_TAG, siteTarget, type SiteTarget } from '../site-paths.js';
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
  const target = siteTarget(req.path);
  const query = new URLSearchParams(req.query);
  const image = parseImageParams(query, {
    maxOutputDimension: deps.config.images.maxOutputDimension,
    allowedWidths: deps.config.images.allowedWidths,
  });
  const headers = nodeRequestHeaders(req.headers);
  try {
    if (image !== undefined) {
      const path = imageSourcePath(target);
      verifySignature(path, query, deps.config.images.signingKeys);
      const meta = await deps.store.head(path);
      if (meta !== undefined) return await serveVariant(deps, req.method, headers, meta, image);
    } else {
      // A `sig` on a URL without image parameters is ignored: there is nothing to protect.
      for (const candidate of contentCandidates(target, req.query)) {
        const served = candidate.action === 'serve' ? await serveStored(deps, req.method, headers, candidate.path, 'asset') : await redirectToFolder(deps, req.method, headers, candidate);
        if (served !== undefined) return served;
      }
    }
  } catch (err) {
    // Removed between its lookup and its bytes: missing after all, answered like any missing asset.
    if (!(isCdnError(err) && err.code === 'not_found')) throw err;
  }
  return notFound(deps, req.method, headers, target);
}

/**
 * The answer from the asset at `path`, or undefined when there is none: as itself (`asset`), or
 * as the body of a content 404 (`not-found`, the root's 404.html). An asset replaced between
 * choosing its headers and opening its bytes is answered again from the new metadata, so headers
 * and bytes always belong to one version.
 */
async function serveStored(deps: OriginDeps, method: string, headers: HeaderGetter, path: string, as: 'asset' | 'not-found'): Promise<ContentAnswer | undefined> {
  for (let attempt = 1; ; attempt++) {
    const meta = await deps.store.head(path);
    if (meta === undefined) return undefined;
    try {
      return await serveOriginal(deps, method, headers, meta, as);
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

/** The Cache-Control of an asset's answers: the publisher's, else by its name (fingerprinted or not). */
function cacheControlOf(deps: OriginDeps, meta: AssetMeta): string {
  return meta.cacheControl ?? (isFingerprinted(meta.path) ? deps.config.immutableCacheControl : deps.config.defaultCacheControl);
}

/**
 * The tags of every answer made from an asset: its own path and the publisher's tags. A folder's
 * index, its redirect and the 404 page carry those of the asset they were made from, so purging
 * that asset's tag covers `/docs/` and `/docs` too.
 */
function surrogateKeyOf(meta: AssetMeta): string {
  return ['/' + assetPathToUrl(meta.path), ...meta.tags].join(' ');
}

function baseHeaders(deps: OriginDeps, meta: AssetMeta): Record<string, string> {
  return {
    'cache-control': cacheControlOf(deps, meta),
    'last-modified': new Date(meta.lastModified).toUTCString(),
    'surrogate-key': surrogateKeyOf(meta),
    'x-content-type-options': 'nosniff',
  };
}

/**
 * An original as itself (200, with validators: conditional and range requests apply), or as the
 * body of a content 404 (the root's 404.html: the 404's own short lifetime, no validators).
 */
async function serveOriginal(deps: OriginDeps, method: string, req: HeaderGetter, meta: AssetMeta, as: 'asset' | 'not-found'): Promise<ContentAnswer> {
  const headers: Record<string, string> =
    as === 'asset'
      ? { ...baseHeaders(deps, meta), 'content-type': meta.contentType, etag: meta.etag }
      : { 'cache-control': NOT_FOUND_CACHE_CONTROL, 'content-type': meta.contentType, 'surrogate-key': `${surrogateKeyOf(meta)} ${NOT_FOUND_TAG}`, 'x-content-type-options': 'nosniff' };
  if (isXmlType(meta.contentType)) headers['content-security-policy'] = SVG_CSP;
  const rep: Representation = {
    headers,
    size: meta.size,
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
  if (as === 'not-found') {
    // Sent whole: preconditions and ranges are evaluated for a 200 only (RFC 9110 §13.2.1, §14.2).
    rep.status = 404;
    const { reply, bytes } = await answer(method, req, rep);
    return { reply, outcome: 'not-found', bytes };
  }
  rep.etag = meta.etag;
  rep.lastModified = meta.lastModified;
  const { reply, outcome, bytes } = await answer(method, req, rep);
  return { reply, outcome: outcome === 'full' || outcome === 'partial' || outcome === 'head' ? 'original' : outcome, bytes };
}

/**
 * `/docs` when `docs/index.html` exists (and `docs` does not): 301 to the folder URL (RFC 9110
 * §15.4.2), cacheable as long as the index it leads to and tagged like it, so replacing or
 * purging the index never leaves a redirect cached longer than the page. The body is a short
 * hypertext note with the link, as §15.4.2 suggests.
 */
async function redirectToFolder(deps: OriginDeps, method: string, req: HeaderGetter, candidate: { path: string; location: string }): Promise<ContentAnswer | undefined> {
  const index = await deps.store.head(candidate.path);
  if (index === undefined) return undefined;
  const link = escapeHtml(candidate.location);
  const body = Buffer.from(`<a href="${link}">${link}</a>\n`);
  const rep: Representation = {
    status: 301,
    headers: {
      location: candidate.location,
      'cache-control': cacheControlOf(deps, index),
      'surrogate-key': surrogateKeyOf(index),
      'content-type': 'text/html; charset=utf-8',
      'x-content-type-options': 'nosniff',
    },
    size: body.length,
    body,
  };
  const { reply, bytes } = await answer(method, req, rep);
  return { reply, outcome: 'redirect', bytes };
}

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Content 404s are cacheable for a minute, so a CDN in front absorbs repeats, and no longer: the asset may be uploaded any time. */
const NOT_FOUND_CACHE_CONTROL = 'public, max-age=60';

/**
 * 404 for a URL no asset answers: with the root's 404.html as the body when it exists, else JSON
 * naming what is missing. Both carry the tag NOT_FOUND_TAG, so a change of the 404 page purges
 * them wherever they are cached; an upload to the missing URL purges that URL.
 */
async function notFound(deps: OriginDeps, method: string, req: HeaderGetter, target: SiteTarget): Promise<ContentAnswer> {
  try {
    const page = await serveStored(deps, method, req, NOT_FOUND_DOCUMENT, 'not-found');
    if (page !== undefined) return page;
  } catch (err) {
    // The page went away while it was being read: the plain 404, then.
    if (!(isCdnError(err) && err.code === 'not_found')) throw err;
  }
  const reply = jsonReply(404, { error: 'not_found', message: `no asset at ${missing(target)}` }, { 'cache-control': NOT_FOUND_CACHE_CONTROL, 'surrogate-key': NOT_FOUND_TAG });
  return { reply, outcome: 'not-found', bytes: method === 'HEAD' ? 0 : (reply.body as Buffer).length };
}

/** What a 404 says is missing: `photos/cat.jpg`; for a folder, `/docs/ (no docs/index.html)`. */
function missing(target: SiteTarget): string {
  if (target.kind === 'file') return target.path;
  const folder = target.folder === '' ? '' : `${target.folder}/`;
  return `/${folder} (no ${folder}${INDEX_DOCUMENT})`;
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
