/**
 * Compressing text at the edge (CSS, JS, JSON, SVG, HTML, XML…) when the client accepts brotli or
 * gzip and upstream sent the body uncompressed. Each stored object is compressed once per coding;
 * the compressed copy is stored beside it under `key + CODING_SEPARATOR + coding` and serves every
 * later request. The copy is a body cache only: freshness, Age and headers always come from the
 * source object, and a copy made from an older body (another sha256) is never used.
 *
 * The SHA-256 of a source body is its identity here, and nothing else at the edge reads it: the
 * edge has the store hash only the bodies of responses it may compress (mayCompress), and an
 * object stored without one that comes to be compressed all the same is hashed then (sourceHash).
 *
 * Responses of compressible resources carry `Vary: Accept-Encoding` whatever coding they use
 * (RFC 9110 §12.5.3), and each coding has its own strong ETag (`"abc"` → `"abc-br"`), as different
 * encodings are different representations (RFC 9110 §8.8.3).
 */
import { createHash } from 'node:crypto';
import { promisify } from 'node:util';
import { brotliCompress, constants as zlib, gzip } from 'node:zlib';
import type { BlobEntry, BlobStore } from '../src/blob/blob-store.js';
import { bufferEntry } from '../src/blob/buffer-entry.js';
import { parseCacheControl } from '../src/http/cache-control.js';
import { acceptEncodingClass } from '../src/http/vary.js';
import type { Logger } from '../src/log.js';
import { CODING_SEPARATOR } from './cache-keys.js';
import { viewOf } from './stored-view.js';
import type { VaryIndex } from './vary-index.js';

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

export type Coding = 'br' | 'gzip';

/** Media types worth compressing (text and text-like structured formats). */
const COMPRESSIBLE = /^(text\/|application\/(javascript|json|xml|manifest\+json|ld\+json|x-javascript|wasm)|image\/svg\+xml|application\/.*\+(json|xml))/i;

/** Compressions running at once (brotli runs on libuv's thread pool, which disk reads share too). */
const MAX_CONCURRENT = 2;
/** Bodies up to this size are compressed while the client waits (a few ms); larger ones in the background. */
const WAIT_MAX_BYTES = 256 * 1024;

/** Internal header on a compressed copy naming the source body it was made from; never sent. */
export const SOURCE_HASH_HEADER = 'anycdn-source-sha256';

export interface CompressionOptions {
  enabled: boolean;
  /** Smaller bodies are sent as they are: the saving does not pay for the header. */
  minBytes: number;
  /** Larger bodies are sent as they are: compressing them would hold the CPU too long. */
  maxBytes: number;
}

/** What mayCompress reads of a response's fields (Headers, FieldList). */
interface FieldGetter {
  get(name: string): string | null;
}

/**
 * Whether the edge may ever compress a stored response of this status and these fields: a 200 of
 * a text type sent without a content coding. Only then does the store hash its body (the hash is
 * the identity of its compressed copies). It is appliesTo's own first test, and wider on purpose:
 * the options (enabled, minBytes, maxBytes) may change at a restart and no-transform with a 304
 * (RFC 9111 §4.3.4 replaces stored fields) while the object stays stored, so those do not decide
 * the hash. A 304 that changed Content-Type or Content-Encoding itself would leave an object
 * compressible without a hash: sourceHash covers that.
 */
export function mayCompress(status: number, headers: FieldGetter): boolean {
  if (status !== 200) return false;
  const encoding = headers.get('content-encoding');
  if (encoding !== null && encoding !== 'identity') return false;
  const type = headers.get('content-type');
  return type !== null && COMPRESSIBLE.test(type);
}

export interface CompressedChoice {
  coding: Coding;
  entry: BlobEntry;
}

export class EdgeCompression {
  private readonly inFlight = new Map<string, Promise<BlobEntry | undefined>>();

  constructor(
    private readonly options: CompressionOptions,
    private readonly store: BlobStore,
    private readonly varyIndex: VaryIndex,
    private readonly logger: Logger,
    private readonly now: () => number,
  ) {}

  private readonly appliesMemo = new WeakMap<BlobEntry['meta'], boolean>();

  /** Whether responses of this stored object depend on Accept-Encoding (so they say Vary). Memoised per object: asked on every hit. */
  applies(entry: BlobEntry): boolean {
    let yes = this.appliesMemo.get(entry.meta);
    if (yes === undefined) {
      yes = this.appliesTo(entry.meta.status, viewOf(entry.meta).headers, entry.meta.size);
      this.appliesMemo.set(entry.meta, yes);
    }
    return yes;
  }

  /** The same decision from a response's status, headers and size (undefined: unknown yet). */
  appliesTo(status: number, headers: FieldGetter, size: number | undefined): boolean {
    if (!this.options.enabled || size === undefined || !mayCompress(status, headers)) return false;
    if (size < this.options.minBytes || size > this.options.maxBytes) return false;
    return !parseCacheControl(headers.get('cache-control')).noTransform;
  }

  /** The compressed copy to send for this request, making it if needed; undefined: send as is. */
  async choose(acceptEncoding: string | null, entry: BlobEntry): Promise<CompressedChoice | undefined> {
    if (!this.applies(entry)) return undefined;
    const coding = acceptEncodingClass(acceptEncoding ?? undefined);
    if (coding === 'identity') return undefined;
    const source = entry.meta.sha256 ?? (await this.sourceHash(entry));
    if (source === undefined) return undefined;
    const key = entry.meta.key + CODING_SEPARATOR + coding;
    const existing = await this.store.get(key);
    if (existing !== undefined && viewOf(existing.meta).headers.get(SOURCE_HASH_HEADER) === source) return { coding, entry: existing };
    let pending = this.inFlight.get(key);
    if (pending === undefined) {
      // Bounded CPU: past MAX_CONCURRENT compressions this answer goes out uncompressed.
      if (this.inFlight.size >= MAX_CONCURRENT) return undefined;
      pending = this.compressAndStore(key, coding, entry, source).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    // A large body is compressed in the background; this client gets it as it is, not late.
    if (entry.meta.size > WAIT_MAX_BYTES) return undefined;
    const made = await pending;
    return made === undefined ? undefined : { coding, entry: made };
  }

  /** Hashes of source bodies stored without one, per metadata object (a memory-tier hit hands out the same one each time). */
  private readonly hashed = new WeakMap<BlobEntry['meta'], string>();

  /**
   * The SHA-256 of a body stored without one (mayCompress was false when it was stored: another
   * type or coding, which a 304 changed since), computed here from the body itself, so that its
   * copies carry the same identity as those of a body hashed by the store. Any other identity
   * would be weaker: the metadata a commit sets (times, size) is also what a 304 or a second
   * commit in the same millisecond may leave equal for another body. Undefined when the body is
   * gone (replaced or evicted since the lookup): this answer goes out as it is.
   */
  private async sourceHash(entry: BlobEntry): Promise<string | undefined> {
    let hash = this.hashed.get(entry.meta);
    if (hash === undefined) {
      try {
        const body = entry.data ?? (await collect(entry.open()));
        hash = createHash('sha256').update(body).digest('hex');
      } catch (err) {
        this.logger.warn({ err, key: entry.meta.key }, 'source body unreadable; sending uncompressed');
        return undefined;
      }
      this.hashed.set(entry.meta, hash);
    }
    return hash;
  }

  private async compressAndStore(key: string, coding: Coding, source: BlobEntry, sourceHash: string): Promise<BlobEntry | undefined> {
    try {
      const body = source.data ?? (await collect(source.open()));
      const compressed = coding === 'br' ? await brotli(body, { params: { [zlib.BROTLI_PARAM_QUALITY]: 9, [zlib.BROTLI_PARAM_SIZE_HINT]: body.length } }) : await gzipAsync(body, { level: 9 });
      if (compressed.length >= body.length) return undefined;
      // Nothing reads the hash of a copy (it is never compressed itself): not computed.
      const writer = await this.store.begin(key, compressed.length, { hash: false });
      const now = this.now();
      const meta = {
        key,
        size: compressed.length,
        status: 200,
        headers: [[SOURCE_HASH_HEADER, sourceHash]] as [string, string][],
        requestTime: now,
        responseTime: now,
        storedAt: now,
      };
      if (writer !== undefined) {
        await writer.write(compressed);
        await writer.commit(meta);
        this.varyIndex.add(key);
        const stored = await this.store.get(key);
        if (stored !== undefined) return stored;
      }
      // Not storable (disk full, too large): still send it this once.
      return bufferEntry({ ...meta, version: 1 }, compressed);
    } catch (err) {
      this.logger.warn({ err, key }, 'compression failed; sending uncompressed');
      return undefined;
    }
  }
}

async function collect(stream: AsyncIterable<Buffer>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c);
  return Buffer.concat(chunks);
}

/** `"abc"` → `"abc-br"`; `W/"abc"` → `W/"abc-br"`. */
export function codedEtag(etag: string | undefined, coding: Coding): string | undefined {
  if (etag === undefined) return undefined;
  const m = /^(W\/)?"(.*)"$/.exec(etag.trim());
  return m ? `${m[1] ?? ''}"${m[2]}-${coding}"` : undefined;
}

/** Add a field name to a Vary value, once. */
export function addVary(value: string | undefined, field: string): string {
  if (value === undefined || value.trim() === '') return field;
  const names = value.split(',').map((s) => s.trim().toLowerCase());
  return names.includes(field.toLowerCase()) || names.includes('*') ? value : `${value}, ${field}`;
}
