/**
 * An in-memory AssetStore with the same semantics as the filesystem store (validation, sniffing,
 * maxBytes 413 with the old version intact, variants keyed by source hash and dropped when a path
 * moves off that hash). For fast app tests and throwaway demos: it is bounded only by the
 * `maxBytes` of each upload, so never use it for real traffic. Stored and returned buffers are
 * copies, so callers cannot change what is stored.
 */
import { PassThrough, type Readable } from 'node:stream';
import { validateAssetPath } from '../../src/asset-path.js';
import type { AssetListing, AssetMeta, AssetStore, ByteRange, ListOptions, PutOptions, VariantMeta, Precondition } from './asset-store.js';
import { checkListOptions, checkRange, compareAssetPaths, digestBody, newAssetMeta, newVariantMeta, sameVersion, variantName } from './asset-store-common.js';

export interface MemoryAssetStoreOptions {
  /** Clock in ms for upload and variant times; defaults to `Date.now`. Injected so tests use literal times. */
  now?: () => number;
}

interface StoredAsset {
  meta: AssetMeta;
  data: Buffer;
}

interface StoredVariant {
  meta: VariantMeta;
  data: Buffer;
}

export class MemoryAssetStore implements AssetStore {
  private readonly now: () => number;
  private readonly assets = new Map<string, StoredAsset>();
  /** source sha256 → variant name → variant. */
  private readonly variants = new Map<string, Map<string, StoredVariant>>();

  constructor(options: MemoryAssetStoreOptions = {}) {
    this.now = options.now ?? Date.now;
  }

  async head(path: string): Promise<AssetMeta | undefined> {
    return this.lookup(path)?.meta;
  }

  async read(path: string, range?: ByteRange): Promise<{ meta: AssetMeta; body: Readable } | undefined> {
    const asset = this.lookup(path);
    if (asset === undefined) return undefined;
    if (range !== undefined) checkRange(range, asset.meta.size);
    const bytes = range === undefined ? asset.data : asset.data.subarray(range.start, range.end + 1);
    const body = new PassThrough();
    body.end(Buffer.from(bytes));
    return { meta: asset.meta, body };
  }

  async readBuffer(path: string): Promise<{ meta: AssetMeta; data: Buffer } | undefined> {
    const asset = this.lookup(path);
    return asset === undefined ? undefined : { meta: asset.meta, data: Buffer.from(asset.data) };
  }

  /** Bytes are kept per path: a version replaced since `meta` was read is gone. */
  async readVersion(meta: AssetMeta): Promise<Buffer | undefined> {
    const asset = this.assets.get(meta.path);
    return asset?.meta.sha256 === meta.sha256 ? Buffer.from(asset.data) : undefined;
  }

  async put(path: string, body: AsyncIterable<Uint8Array>, options: PutOptions): Promise<AssetMeta> {
    validateAssetPath(path);
    const chunks: Buffer[] = [];
    const digest = await digestBody(body, options.maxBytes, (chunk) => {
      chunks.push(Buffer.from(chunk));
    });
    const meta = newAssetMeta(path, digest, options, this.now());
    const old = this.assets.get(path);
    options.precondition?.(old?.meta);
    if (options.keepUnchanged === true && old !== undefined && sameVersion(old.meta, meta)) return old.meta;
    this.assets.set(path, { meta, data: Buffer.concat(chunks) });
    if (old !== undefined && old.meta.sha256 !== meta.sha256) this.variants.delete(old.meta.sha256);
    return meta;
  }

  async delete(path: string, precondition?: Precondition): Promise<AssetMeta | undefined> {
    const asset = this.lookup(path);
    precondition?.(asset?.meta);
    if (asset === undefined) return undefined;
    this.assets.delete(path);
    this.variants.delete(asset.meta.sha256);
    return asset.meta;
  }

  async list(options: ListOptions): Promise<AssetListing> {
    const { prefix, after, limit } = checkListOptions(options);
    const paths = [...this.assets.keys()]
      .filter((p) => p.startsWith(prefix) && (after === undefined || compareAssetPaths(p, after) > 0))
      .sort(compareAssetPaths);
    const page = paths.slice(0, limit);
    return { assets: page.map((p) => this.assets.get(p)!.meta), next: paths.length > limit ? page.at(-1) : undefined };
  }

  async getVariant(sourceSha256: string, variant: string): Promise<{ meta: VariantMeta; data: Buffer } | undefined> {
    const name = variantName(sourceSha256, variant);
    const stored = this.variants.get(sourceSha256)?.get(name);
    return stored === undefined ? undefined : { meta: stored.meta, data: Buffer.from(stored.data) };
  }

  async putVariant(
    sourceSha256: string,
    variant: string,
    data: Buffer,
    info: { contentType: string; width: number; height: number },
  ): Promise<VariantMeta> {
    const name = variantName(sourceSha256, variant);
    const meta = newVariantMeta(sourceSha256, variant, data, info, this.now());
    let bySource = this.variants.get(sourceSha256);
    if (bySource === undefined) {
      bySource = new Map();
      this.variants.set(sourceSha256, bySource);
    }
    bySource.set(name, { meta, data: Buffer.from(data) });
    return meta;
  }

  private lookup(path: string): StoredAsset | undefined {
    validateAssetPath(path);
    return this.assets.get(path);
  }
}
