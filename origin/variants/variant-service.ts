/**
 * The variant service: from an asset and image parameters to the bytes of the variant, generated
 * at most once. It checks the input bounds, probes the source (cached by content hash), negotiates
 * the output format, returns a stored variant when there is one, and otherwise transforms under
 * the concurrency limiter, coalescing concurrent requests for the same variant into one transform,
 * and stores the result. Errors are never stored: the next request tries again.
 *
 * Per new variant the store is asked once for the variant and, when the source is not in the
 * source cache, once for the source's bytes by the metadata the caller already read: a transform
 * costs no path resolution or metadata read beyond the caller's own.
 */
import { LRUCache } from 'lru-cache';
import { CdnError, clientError } from '../../src/errors.js';
import { negotiateFormat, negotiates } from '../../src/image/negotiate.js';
import { variantName, type ImageParams, type OutputFormat } from '../../src/image/params.js';
import { isImageType } from '../../src/sniff.js';
import { newVariantMeta } from '../store/asset-store-common.js';
import type { AssetMeta, AssetStore, VariantMeta } from '../store/asset-store.js';
import { imageErrorOf, sourceTooLarge, transformTimeout } from './image-errors.js';
import type { TransformLimiter } from './limiter.js';
import type { ImageLimits } from './limits.js';
import { transformImage, type TransformOptions } from './pipeline.js';
import { probeImage, type ProbedImage } from './probe.js';
import { createSourceCache, DEFAULT_SOURCE_CACHE_BYTES } from './source-cache.js';

export interface VariantServiceDeps {
  /** Where sources are read and variants stored (required; variants are generated once, ever). */
  store: AssetStore;
  /** Input and output bounds (required; DEFAULT_IMAGE_LIMITS documents the usual values). */
  limits: ImageLimits;
  /** Bounds the transforms (and the source reads of probes) running and waiting at once. */
  limiter: TransformLimiter;
  /** Default qualities per format when `q` is absent (see TransformOptions.quality). */
  quality: TransformOptions['quality'];
  /** AVIF encoder effort (see TransformOptions.avifEffort; 2 is the measured sweet spot). */
  avifEffort: number;
  /** Whether `fmt=auto` may answer AVIF; explicit `fmt=avif` is always honoured. */
  avif: boolean;
  /** WebP encoder effort. Default 4 (see TransformOptions.webpEffort). */
  webpEffort?: number;
  /** JPEG with mozjpeg. Default false (see TransformOptions.mozjpeg). */
  mozjpeg?: boolean;
  /**
   * Probe results kept, keyed by source hash. Default 10 000: an entry is ~200 bytes, so ~2 MB
   * lets a busy origin decide the output format of a stored variant without re-reading the
   * source; a miss costs one read and a header parse.
   */
  probeCacheSize?: number;
  /**
   * Bytes of recently transformed sources kept in memory, by content hash. Default 64 MiB
   * (DEFAULT_SOURCE_CACHE_BYTES, see source-cache.ts): the variants of one upload are asked for
   * together, and each would otherwise re-read the whole original. 0 keeps none.
   */
  sourceCacheBytes?: number;
  /** The transform. Default `transformImage`; tests hand in a controllable one. */
  transform?: typeof transformImage;
}

export interface RenderedVariant {
  meta: VariantMeta;
  data: Buffer;
  /** The output depends on `Accept` (`fmt=auto`): answer with `Vary: Accept`. */
  vary: boolean;
  /** The bytes come from a transform run for this call (its own or one it joined), not from the store. */
  generated: boolean;
  /**
   * Where a generated variant's time went, in ms (for the request log): waiting for a transform
   * slot, then the transform itself (sharp). Absent for stored variants and joined transforms.
   */
  phases?: { queueMs: number; transformMs: number };
}

export interface VariantService {
  /** The probed source; 415 for non-images, 413 past `maxInputBytes`, 422 for bombs and corrupt files. */
  probe(meta: AssetMeta): Promise<ProbedImage>;
  /** The variant of `meta` for normalised `params`, negotiated against `accept` when `fmt=auto`. */
  render(meta: AssetMeta, params: ImageParams, accept: string | undefined): Promise<RenderedVariant>;
}

/** A probe's answer: probing the same bytes again gives the same one, failures included. */
type ProbeOutcome = { ok: true; probed: ProbedImage } | { ok: false; error: CdnError };

type Generated = Omit<RenderedVariant, 'vary'>;

export function createVariantService(deps: VariantServiceDeps): VariantService {
  const { store, limits, limiter } = deps;
  const transform = deps.transform ?? transformImage;
  const options: TransformOptions = { quality: deps.quality, avifEffort: deps.avifEffort, limits };
  if (deps.webpEffort !== undefined) options.webpEffort = deps.webpEffort;
  if (deps.mozjpeg !== undefined) options.mozjpeg = deps.mozjpeg;
  const probes = new LRUCache<string, ProbeOutcome>({ max: deps.probeCacheSize ?? 10_000 });
  // In-flight tables, by source hash (probes) and by source hash + variant name (transforms). An
  // entry exists only while its job runs or waits in the limiter, so each table holds at most
  // concurrency + queueLimit entries: the limiter's bound is theirs.
  const probing = new Map<string, Promise<ProbeOutcome>>();
  const generating = new Map<string, Promise<Generated>>();
  // Generations that have ended (stored, or failed), counted: see storedVariant().
  let generationsEnded = 0;
  const sources = createSourceCache({ store, maxBytes: deps.sourceCacheBytes ?? DEFAULT_SOURCE_CACHE_BYTES });

  async function readSource(meta: AssetMeta): Promise<Buffer> {
    const data = await sources.read(meta);
    if (data !== undefined) return data;
    // The version `meta` describes was deleted or replaced (and its bytes dropped) since it was
    // read; a new version's variants are another request's. Rare: only now is the path read again.
    if ((await store.head(meta.path)) === undefined) throw clientError('not_found', `no asset at ${meta.path}`, { status: 404 });
    throw new CdnError('source_changed', 'internal', `${meta.path} changed while its variant was requested`, {
      status: 503,
      headers: { 'Retry-After': '1' },
    });
  }

  function checkSource(meta: AssetMeta): void {
    if (!isImageType(meta.contentType)) {
      throw new CdnError('not_an_image', 'client', `${meta.path} is ${meta.contentType}, not an image`, { status: 415 });
    }
    if (meta.size > limits.maxInputBytes) throw sourceTooLarge(meta.size, limits.maxInputBytes);
  }

  async function probe(meta: AssetMeta): Promise<ProbedImage> {
    checkSource(meta);
    const outcome = probes.get(meta.sha256) ?? (await probeOnce(meta));
    if (!outcome.ok) throw outcome.error;
    return outcome.probed;
  }

  function probeOnce(meta: AssetMeta): Promise<ProbeOutcome> {
    const running = probing.get(meta.sha256);
    if (running !== undefined) return running;
    const job = limiter.run(async (): Promise<ProbeOutcome> => {
      const data = await readSource(meta);
      try {
        return { ok: true, probed: await probeImage(data, limits) };
      } catch (err) {
        return { ok: false, error: imageErrorOf(err) };
      }
    });
    probing.set(meta.sha256, job);
    job.then(
      (outcome) => probes.set(meta.sha256, outcome),
      () => undefined, // read and overload errors are not the bytes' fault: not cached
    ).finally(() => probing.delete(meta.sha256));
    return job;
  }

  async function render(meta: AssetMeta, params: ImageParams, accept: string | undefined): Promise<RenderedVariant> {
    const probed = await probe(meta);
    const output = negotiateFormat(params.fmt, accept, probed, { avif: deps.avif });
    const name = variantName(params, output);
    const vary = negotiates(params.fmt);
    const key = `${meta.sha256}\n${name}`;
    const stored = await storedVariant(meta.sha256, name, key);
    if (stored !== undefined) return { ...stored, vary, generated: false };
    const running = generating.get(key);
    if (running !== undefined) {
      // Joined another request's transform: its phases are that request's, not this one's.
      const { phases: _theirs, ...joined } = await running;
      return { ...joined, vary };
    }
    return { ...(await generate(key, meta, probed, params, output, name)), vary };
  }

  /**
   * The stored variant, if any. A generation that ends while the lookup runs may have stored the
   * variant after the lookup missed it and left `generating` before the caller checks there; only
   * then is the store asked again, so that the variant is still generated only once without a
   * second lookup for every new variant.
   */
  async function storedVariant(sourceSha256: string, name: string, key: string): Promise<Omit<Generated, 'generated'> | undefined> {
    const ended = generationsEnded;
    const stored = await store.getVariant(sourceSha256, name);
    if (stored !== undefined || generationsEnded === ended || generating.has(key)) return stored;
    return store.getVariant(sourceSha256, name);
  }

  /**
   * Starts the one transform of a variant. Callers get its result or, once it has run for
   * `timeoutMs`, 422 `transform_timeout`. The job itself keeps its limiter slot (and its entry,
   * so no second copy starts) until libvips really stops: sharp interrupts decoding and most
   * encoders at the deadline, but not the AVIF encoder, whose late result is still stored so the
   * work is never done twice.
   */
  function generate(key: string, meta: AssetMeta, probed: ProbedImage, params: ImageParams, output: OutputFormat, name: string): Promise<Generated> {
    let timer: NodeJS.Timeout | undefined;
    let expire: (err: CdnError) => void = () => undefined;
    const deadline = new Promise<never>((_, reject) => (expire = reject));
    let storing: Promise<unknown> = Promise.resolve();
    const asked = performance.now();
    const job = limiter.run(async (): Promise<Generated> => {
      const slot = performance.now();
      timer = setTimeout(() => expire(transformTimeout(limits.timeoutMs)), limits.timeoutMs);
      const data = await readSource(meta);
      const out = await transform(data, probed, params, output, options);
      const phases = { queueMs: roundMs(slot - asked), transformMs: roundMs(performance.now() - slot) };
      const info = { contentType: out.contentType, width: out.width, height: out.height };
      // Stored outside the transform slot and after the answer has gone out (setImmediate): a small
      // variant is written synchronously (fs-asset-store.ts) and would otherwise delay it. Until
      // stored, later requests share this result through `generating`; a failed write only means
      // the next request makes it again.
      storing = new Promise((resolve) => setImmediate(resolve)).then(() => store.putVariant(meta.sha256, name, out.data, info)).catch(() => undefined);
      return { meta: newVariantMeta(meta.sha256, name, out.data, info, Date.now()), data: out.data, generated: true, phases };
    });
    const result = Promise.race([job, deadline]);
    generating.set(key, result);
    job
      .then(() => storing, () => undefined)
      .finally(() => {
        clearTimeout(timer);
        generationsEnded += 1;
        generating.delete(key);
      });
    return result;
  }
  return { probe, render };
}

/** Milliseconds to one decimal, as the request log writes durations. */
function roundMs(ms: number): number {
  return Math.round(ms * 10) / 10;
}
