/**
 * What `anycdn upload DIR PREFIX` has to do, decided from one listing of what the origin stores
 * under PREFIX (`GET /_cdn/assets?prefix=…`) and the local files: upload what is new or changed,
 * leave what is the same, and with `--delete` remove what is stored but no longer in DIR. Pure.
 *
 * "The same" is what the origin itself counts as unchanged: same size and SHA-256, and the same
 * Cache-Control and tags as this upload would store (the origin normalises those the way
 * `storedHeaders` does), so a file whose bytes did not change but whose `--tag` did is uploaded.
 */

export interface LocalFile {
  file: string;
  /** The asset path it is uploaded as. */
  path: string;
  size: number;
  sha256: string;
}

/** A stored asset as the listing gives it. */
export interface StoredAsset {
  path: string;
  size: number;
  sha256: string;
  cacheControl: string | null;
  tags: string[];
}

/** What an upload stores besides the bytes. */
export interface StoredHeaders {
  cacheControl: string | undefined;
  tags: string[];
}

export type UploadReason = 'new' | 'content' | 'headers';

export interface SyncPlan {
  upload: { local: LocalFile; reason: UploadReason }[];
  unchanged: LocalFile[];
  /** Stored paths no local file has (removed only with `--delete`). */
  remove: string[];
}

/**
 * The Cache-Control and tags the origin stores for `--cache-control` and `--tag` values: the
 * Cache-Control trimmed (empty: none), the tags split on spaces and commas, once each, in order
 * (origin/routes/assets.ts).
 */
export function storedHeaders(cacheControl: string | undefined, tags: readonly string[]): StoredHeaders {
  const cc = cacheControl?.trim();
  const split = tags.flatMap((t) => t.trim().split(/[\s,]+/)).filter((t) => t !== '');
  return { cacheControl: cc === '' ? undefined : cc, tags: [...new Set(split)] };
}

export function planSync(local: readonly LocalFile[], stored: readonly StoredAsset[], headers: StoredHeaders, withDelete: boolean): SyncPlan {
  const byPath = new Map(stored.map((s) => [s.path, s]));
  const plan: SyncPlan = { upload: [], unchanged: [], remove: [] };
  for (const file of local) {
    const s = byPath.get(file.path);
    if (s === undefined) plan.upload.push({ local: file, reason: 'new' });
    else if (s.size !== file.size || s.sha256 !== file.sha256) plan.upload.push({ local: file, reason: 'content' });
    else if ((s.cacheControl ?? undefined) !== headers.cacheControl || !sameList(s.tags, headers.tags)) plan.upload.push({ local: file, reason: 'headers' });
    else plan.unchanged.push(file);
  }
  if (withDelete) {
    const here = new Set(local.map((f) => f.path));
    plan.remove = stored.filter((s) => !here.has(s.path)).map((s) => s.path);
  }
  return plan;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}
