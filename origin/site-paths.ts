/**
 * Static sites: which stored assets a content URL may be answered from, in order, decided from
 * the URL alone (the store is asked afterwards, by origin/routes/content.ts). As nginx's `index`,
 * S3 website hosting and Cloudflare Pages do:
 *
 * - `/docs/a.css` and `/docs` name the asset at that exact path; the exact path always wins.
 * - `/` and `/docs/` name a folder, answered by its `index.html` (`index.html`, `docs/index.html`).
 * - `/docs`, when no asset `docs` exists but `docs/index.html` does, is redirected to `/docs/`
 *   (its query kept), so relative links in that page resolve inside the folder.
 * - A missing asset is answered 404, with the root's `404.html` as the body when there is one.
 *
 * Image parameters make a URL a request for one image: never a folder's index, never a redirect.
 */
import { validateAssetPath } from '../src/asset-path.js';
import { clientError, type CdnError } from '../src/errors.js';
import { assetPathOf } from './request-path.js';

/** The document that answers for a folder URL (`/`, `/docs/`). */
export const INDEX_DOCUMENT = 'index.html';
/** The asset at the root whose bytes are the body of content 404s, when it exists. */
export const NOT_FOUND_DOCUMENT = '404.html';
/**
 * The Surrogate-Key tag every content 404 carries (with the 404 page or JSON), so changing the
 * 404 page purges every cached 404 at once (origin/purge/asset-purge.ts).
 */
export const NOT_FOUND_TAG = 'anycdn:404';

/** What the path of a content URL names, before the store is asked. */
export type SiteTarget =
  /** `/docs/a.css`, `/docs`: the asset at `path`. */
  | { kind: 'file'; path: string; rawPath: string }
  /** `/`, `/docs/`: a folder; `folder` is '' for the root, else its asset path (`docs`). */
  | { kind: 'folder'; folder: string; rawPath: string };

/** One way to answer a plain (non-image) content request, tried in order until its asset exists. */
export type Candidate =
  /** Serve the asset at `path` as the answer (the file itself, or a folder's index). */
  | { action: 'serve'; path: string }
  /** When the asset at `path` exists, answer 301 to `location` (a path-absolute reference, RFC 9110 §10.2.2). */
  | { action: 'redirect'; path: string; location: string };

/**
 * The target a raw request path (as sent: percent-encoded, dot segments refused before) names.
 * One trailing slash marks a folder; the rest is validated as an asset path, so `//`, `/docs//`,
 * an encoded slash or a backslash is the same `invalid_path` 400 as anywhere else.
 */
export function siteTarget(rawPath: string): SiteTarget {
  if (rawPath === '/') return { kind: 'folder', folder: '', rawPath };
  if (rawPath.endsWith('/')) {
    const folder = rawPath.slice(0, -1);
    // `//` is an empty segment (assetPathOf refuses it whole), not a second spelling of the root.
    return { kind: 'folder', folder: assetPathOf(folder === '/' ? rawPath : folder), rawPath };
  }
  return { kind: 'file', path: assetPathOf(rawPath), rawPath };
}

/**
 * Where a plain request for `target` may be answered from, in order: a file first, then (when
 * the file is missing) the redirect to its folder URL; a folder, its index. Empty when nothing
 * could exist there (an index path over the length limit): a 404.
 *
 * The redirect's Location is the request path as sent plus `/`, and the query as sent: the
 * publisher's own spelling, so it matches the links of the site (and the edge's cache keys for
 * them). It cannot leave the host: the path was validated, so it starts with one `/` followed by
 * a non-empty segment, never `//` or `/\`.
 */
export function contentCandidates(target: SiteTarget, rawQuery: string): Candidate[] {
  if (target.kind === 'folder') {
    const index = indexOf(target.folder);
    return index === undefined ? [] : [{ action: 'serve', path: index }];
  }
  const candidates: Candidate[] = [{ action: 'serve', path: target.path }];
  const index = indexOf(target.path);
  if (index !== undefined) {
    candidates.push({ action: 'redirect', path: index, location: `${target.rawPath}/${rawQuery === '' ? '' : `?${rawQuery}`}` });
  }
  return candidates;
}

/**
 * The source path of an image request (one with image parameters). A folder URL is not an image:
 * a 400 naming the path, rather than parameters silently ignored on its index (DESIGN.md: an image
 * URL never ignores a parameter).
 */
export function imageSourcePath(target: SiteTarget): string {
  if (target.kind === 'file') return target.path;
  throw folderIsNotAnImage(target.rawPath);
}

function folderIsNotAnImage(rawPath: string): CdnError {
  return clientError('not_an_image', `${rawPath.slice(0, 200)} is a folder, not an image: image parameters apply to an image file's URL`, { status: 400, field: 'path' });
}

/** The index document of a folder ('' for the root), or undefined when that path is over the limits. */
function indexOf(folder: string): string | undefined {
  const path = folder === '' ? INDEX_DOCUMENT : `${folder}/${INDEX_DOCUMENT}`;
  try {
    return validateAssetPath(path);
  } catch {
    return undefined;
  }
}
