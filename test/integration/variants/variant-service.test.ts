/**
 * The variant service with real sharp and the in-memory asset store: negotiation, generate-once,
 * coalescing, caching of probes and sources, errors never stored, load shedding and timeouts.
 */
import sharp from 'sharp';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { MemoryAssetStore } from '../../../origin/store/memory-asset-store.js';
import type { AssetMeta } from '../../../origin/store/asset-store.js';
import { TransformLimiter } from '../../../origin/variants/limiter.js';
import { DEFAULT_IMAGE_LIMITS, type ImageLimits } from '../../../origin/variants/limits.js';
import { DEFAULT_QUALITY, transformImage } from '../../../origin/variants/pipeline.js';
import { createVariantService, type VariantServiceDeps } from '../../../origin/variants/variant-service.js';

const CHROME_ACCEPT = 'image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((res) => (resolve = res));
  return { promise, resolve };
}

async function* bodyOf(data: Buffer): AsyncIterable<Uint8Array> {
  yield data;
}

interface Setup {
  store: MemoryAssetStore;
  limiter: TransformLimiter;
  transforms: () => number;
  service: ReturnType<typeof createVariantService>;
  put(path: string, data: Buffer): Promise<AssetMeta>;
}

function setup(
  options: { limits?: Partial<ImageLimits>; gate?: Promise<void>; limiter?: TransformLimiter; avif?: boolean; sourceCacheBytes?: number } = {},
): Setup {
  const store = new MemoryAssetStore({ now: () => 1_700_000_000_000 });
  const limiter = options.limiter ?? new TransformLimiter({ concurrency: 2, queueLimit: 64, retryAfterSec: 2 });
  let count = 0;
  const transform: typeof transformImage = async (...args) => {
    count += 1;
    await options.gate;
    return transformImage(...args);
  };
  const deps: VariantServiceDeps = {
    store,
    limits: { ...DEFAULT_IMAGE_LIMITS, ...options.limits },
    limiter,
    quality: DEFAULT_QUALITY,
    avifEffort: 2,
    avif: options.avif ?? true,
    transform,
  };
  if (options.sourceCacheBytes !== undefined) deps.sourceCacheBytes = options.sourceCacheBytes;
  return {
    store,
    limiter,
    transforms: () => count,
    service: createVariantService(deps),
    put: (path, data) => store.put(path, bodyOf(data), { maxBytes: 10 * 1024 * 1024 }),
  };
}

const photo = () =>
  sharp({ create: { width: 64, height: 48, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 120, sigma: 40 } } })
    .jpeg()
    .toBuffer();
const alphaPng = () => sharp({ create: { width: 32, height: 32, channels: 4, background: { r: 0, g: 90, b: 0, alpha: 0.5 } } }).png().toBuffer();

describe('createVariantService', () => {
  let s: Setup;
  beforeEach(() => {
    s = setup();
  });

  it('renders, stores, and serves the stored variant the second time', async () => {
    const meta = await s.put('a/photo.jpg', await photo());
    const first = await s.service.render(meta, { w: 32, fmt: 'webp' }, undefined);
    expect(first.generated).toBe(true);
    expect(first.vary).toBe(false);
    expect(first.meta).toMatchObject({ sourceSha256: meta.sha256, variant: 'fmt=webp&w=32', contentType: 'image/webp', width: 32, height: 24 });
    expect(first.meta.size).toBe(first.data.length);
    expect((await sharp(first.data).metadata()).format).toBe('webp');

    const second = await s.service.render(meta, { w: 32, fmt: 'webp' }, undefined);
    expect(second.generated).toBe(false);
    expect(second.data.equals(first.data)).toBe(true);
    expect(second.meta.etag).toBe(first.meta.etag);
    expect(s.transforms()).toBe(1);
  });

  it("reports a new variant's queue and transform time; stored and joined variants report none", async () => {
    const gate = deferred();
    const t = setup({ gate: gate.promise, limiter: new TransformLimiter({ concurrency: 1, queueLimit: 8, retryAfterSec: 2 }) });
    const meta = await t.put('a/photo.jpg', await photo());
    await t.service.probe(meta);
    const first = t.service.render(meta, { w: 32, fmt: 'jpeg' }, undefined);
    const joined = t.service.render(meta, { w: 32, fmt: 'jpeg' }, undefined);
    const queued = t.service.render(meta, { w: 16, fmt: 'jpeg' }, undefined);
    await new Promise((r) => setTimeout(r, 60));
    gate.resolve();
    const [a, b, c] = await Promise.all([first, joined, queued]);
    // The gate sits inside the transform: the first spent >= 60 ms there, the third as long queued.
    expect(a.phases?.transformMs).toBeGreaterThanOrEqual(55);
    expect(a.phases?.queueMs).toBeLessThan(55);
    expect(c.phases?.queueMs).toBeGreaterThanOrEqual(55);
    expect(c.phases?.transformMs).toBeGreaterThanOrEqual(0);
    expect(b.generated).toBe(true);
    expect(b.phases).toBeUndefined();
    const stored = await t.service.render(meta, { w: 32, fmt: 'jpeg' }, undefined);
    expect(stored.generated).toBe(false);
    expect(stored.phases).toBeUndefined();
  });

  it('coalesces 20 concurrent renders of one variant into exactly one transform with identical bytes', async () => {
    const meta = await s.put('a/photo.jpg', await photo());
    const putVariant = vi.spyOn(s.store, 'putVariant');
    const results = await Promise.all(Array.from({ length: 20 }, () => s.service.render(meta, { w: 40, fmt: 'jpeg' }, undefined)));
    expect(s.transforms()).toBe(1);
    // Stored once, right after the answers went out.
    await new Promise((resolve) => setImmediate(resolve));
    expect(putVariant).toHaveBeenCalledTimes(1);
    for (const r of results) {
      expect(r.generated).toBe(true);
      expect(r.data.equals(results[0]!.data)).toBe(true);
      expect(r.meta.etag).toBe(results[0]!.meta.etag);
    }
  });

  it('probes once per source: without a source cache later renders read the source only to transform, stored ones not at all', async () => {
    const t = setup({ sourceCacheBytes: 0 });
    const meta = await t.put('a/photo.jpg', await photo());
    const readVersion = vi.spyOn(t.store, 'readVersion');
    await t.service.render(meta, { w: 20 }, undefined);
    expect(readVersion).toHaveBeenCalledTimes(2); // probe + transform
    await t.service.render(meta, { w: 30 }, undefined);
    expect(readVersion).toHaveBeenCalledTimes(3); // transform only
    await t.service.render(meta, { w: 30 }, 'image/webp');
    expect(readVersion).toHaveBeenCalledTimes(3); // stored (fmt absent: Accept is ignored)
    await expect(t.service.probe(meta)).resolves.toMatchObject({ format: 'jpeg', width: 64, height: 48 });
    expect(readVersion).toHaveBeenCalledTimes(3);
  });

  it('reads a source once for its probe and every later variant, by its metadata, never by path', async () => {
    const meta = await s.put('a/photo.jpg', await photo());
    const readVersion = vi.spyOn(s.store, 'readVersion');
    const head = vi.spyOn(s.store, 'head');
    const readBuffer = vi.spyOn(s.store, 'readBuffer');
    for (const w of [20, 30, 40]) await s.service.render(meta, { w, fmt: 'webp' }, undefined);
    expect(readVersion).toHaveBeenCalledTimes(1);
    expect(readVersion).toHaveBeenCalledWith(meta);
    expect([head.mock.calls.length, readBuffer.mock.calls.length]).toEqual([0, 0]);
    expect(s.transforms()).toBe(3);
  });

  it('reads a source once when different variants of it are rendered concurrently', async () => {
    const meta = await s.put('a/photo.jpg', await photo());
    const readVersion = vi.spyOn(s.store, 'readVersion');
    const widths = [10, 12, 14, 16, 18, 20];
    const results = await Promise.all(widths.map((w) => s.service.render(meta, { w, fmt: 'png' }, undefined)));
    expect(results.map((r) => [r.generated, r.meta.width])).toEqual(widths.map((w) => [true, w]));
    expect(readVersion).toHaveBeenCalledTimes(1);
    expect(s.transforms()).toBe(widths.length);
  });

  it('re-reads a source larger than the source cache for every variant instead of keeping it', async () => {
    const data = await photo();
    const t = setup({ sourceCacheBytes: data.length - 1 });
    const meta = await t.put('a/photo.jpg', data);
    const readVersion = vi.spyOn(t.store, 'readVersion');
    await t.service.render(meta, { w: 20 }, undefined);
    await t.service.render(meta, { w: 30 }, undefined);
    expect(readVersion).toHaveBeenCalledTimes(3); // probe + two transforms
    const fits = setup({ sourceCacheBytes: data.length });
    const fitsMeta = await fits.put('a/photo.jpg', data);
    const fitsRead = vi.spyOn(fits.store, 'readVersion');
    await fits.service.render(fitsMeta, { w: 20 }, undefined);
    await fits.service.render(fitsMeta, { w: 30 }, undefined);
    expect(fitsRead).toHaveBeenCalledTimes(1);
  });

  it('never renders a new upload from the cached source of the version it replaced', async () => {
    const red = await sharp({ create: { width: 40, height: 20, channels: 3, background: '#ff0000' } }).png().toBuffer();
    const blue = await sharp({ create: { width: 20, height: 40, channels: 3, background: '#0000ff' } }).png().toBuffer();
    const v1 = await s.put('a/swap.png', red);
    const first = await s.service.render(v1, { w: 10, fmt: 'png' }, undefined);
    const v2 = await s.put('a/swap.png', blue);
    const second = await s.service.render(v2, { w: 10, fmt: 'png' }, undefined);
    expect([first.meta.sourceSha256, first.meta.width, first.meta.height]).toEqual([v1.sha256, 10, 5]);
    expect([second.meta.sourceSha256, second.meta.width, second.meta.height, second.generated]).toEqual([v2.sha256, 10, 20, true]);
    const { data } = await sharp(second.data).raw().toBuffer({ resolveWithObject: true });
    expect([data[0], data[1], data[2]]).toEqual([0, 0, 255]);
  });

  it('generates once when the transform of a variant ends and is stored while another request looks it up', async () => {
    const gate = deferred();
    const t = setup({ gate: gate.promise });
    const meta = await t.put('a/photo.jpg', await photo());
    await t.service.probe(meta);
    // The second request's lookup misses, then is held until the first request's variant is stored.
    const lookupHeld = deferred();
    const getVariant = t.store.getVariant.bind(t.store);
    let lookups = 0;
    vi.spyOn(t.store, 'getVariant').mockImplementation(async (sha, name) => {
      const found = await getVariant(sha, name);
      lookups += 1;
      if (lookups === 2) await lookupHeld.promise;
      return found;
    });
    const first = t.service.render(meta, { w: 20 }, undefined);
    await vi.waitFor(() => expect(t.transforms()).toBe(1));
    const second = t.service.render(meta, { w: 20 }, undefined);
    await vi.waitFor(() => expect(lookups).toBe(2));
    gate.resolve();
    await expect(first).resolves.toMatchObject({ generated: true });
    await vi.waitFor(async () => expect(await getVariant(meta.sha256, 'fmt=jpeg&w=20')).toBeDefined());
    await new Promise((r) => setTimeout(r, 10)); // the first generation leaves its table after the write
    lookupHeld.resolve();
    await expect(second).resolves.toMatchObject({ generated: false, meta: { variant: 'fmt=jpeg&w=20' } });
    expect(t.transforms()).toBe(1);
    expect(lookups).toBe(3);
  });

  it('negotiates fmt=auto from Accept and marks it vary; an explicit format does not vary', async () => {
    const jpeg = await s.put('a/photo.jpg', await photo());
    const png = await s.put('a/alpha.png', await alphaPng());
    const cases: [AssetMeta, string | undefined, string, string][] = [
      [jpeg, CHROME_ACCEPT, 'image/avif', 'fmt=avif&w=16'],
      [jpeg, 'image/webp,*/*', 'image/webp', 'fmt=webp&w=16'],
      [jpeg, '*/*', 'image/jpeg', 'fmt=jpeg&w=16'],
      [jpeg, undefined, 'image/jpeg', 'fmt=jpeg&w=16'],
      [png, '*/*', 'image/png', 'fmt=png&w=16'],
      [png, CHROME_ACCEPT, 'image/avif', 'fmt=avif&w=16'],
    ];
    for (const [meta, accept, type, variant] of cases) {
      const r = await s.service.render(meta, { w: 16, fmt: 'auto' }, accept);
      expect([r.meta.contentType, r.meta.variant, r.vary], `${meta.path} ${accept}`).toEqual([type, variant, true]);
    }
    const explicit = await s.service.render(jpeg, { w: 16, fmt: 'webp' }, '*/*');
    expect([explicit.meta.contentType, explicit.vary]).toEqual(['image/webp', false]);
  });

  it('does not answer fmt=auto with AVIF when avif is off', async () => {
    const t = setup({ avif: false });
    const meta = await t.put('a/photo.jpg', await photo());
    const r = await t.service.render(meta, { w: 16, fmt: 'auto' }, CHROME_ACCEPT);
    expect(r.meta.contentType).toBe('image/webp');
  });

  it('refuses a source over maxInputBytes with 413 without reading it', async () => {
    const t = setup({ limits: { maxInputBytes: 100 } });
    const meta = await t.put('a/photo.jpg', await photo());
    const readVersion = vi.spyOn(t.store, 'readVersion');
    await expect(t.service.render(meta, { w: 10 }, undefined)).rejects.toMatchObject({ code: 'source_too_large', status: 413 });
    expect(readVersion).not.toHaveBeenCalled();
  });

  it('refuses text with 415 without reading it', async () => {
    const meta = await s.put('a/fake.jpg', Buffer.from('just some text, not a JPEG at all\n'));
    expect(meta.contentType).toMatch(/^text\/plain/);
    const readVersion = vi.spyOn(s.store, 'readVersion');
    await expect(s.service.render(meta, { w: 10 }, undefined)).rejects.toMatchObject({ code: 'not_an_image', status: 415 });
    expect(readVersion).not.toHaveBeenCalled();
  });

  it('answers a truncated JPEG with 422 to every waiter, stores nothing, and tries again next time', async () => {
    const full = await sharp({ create: { width: 200, height: 200, channels: 3, background: '#000', noise: { type: 'gaussian', mean: 128, sigma: 40 } } })
      .jpeg()
      .toBuffer();
    const meta = await s.put('a/truncated.jpg', full.subarray(0, full.length >> 1));
    const putVariant = vi.spyOn(s.store, 'putVariant');
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => s.service.render(meta, { w: 50 }, undefined)));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toMatchObject({ code: 'corrupt_image', status: 422 });
    }
    expect(s.transforms()).toBe(1);
    expect(putVariant).not.toHaveBeenCalled();
    expect(await s.store.getVariant(meta.sha256, 'fmt=jpeg&w=50')).toBeUndefined();
    await expect(s.service.render(meta, { w: 50 }, undefined)).rejects.toMatchObject({ code: 'corrupt_image' });
    expect(s.transforms()).toBe(2);
  });

  it('remembers a failed probe: a corrupt header is answered 422 again without re-reading', async () => {
    const png = await alphaPng();
    const meta = await s.put('a/broken.png', Buffer.concat([png.subarray(0, 16), Buffer.alloc(40, 0xff)]));
    expect(meta.contentType).toBe('image/png');
    const readVersion = vi.spyOn(s.store, 'readVersion');
    await expect(s.service.render(meta, { w: 10 }, undefined)).rejects.toMatchObject({ code: 'corrupt_image', status: 422 });
    await expect(s.service.render(meta, { w: 10 }, undefined)).rejects.toMatchObject({ code: 'corrupt_image', status: 422 });
    expect(readVersion).toHaveBeenCalledTimes(1);
  });

  it('sheds load with 503 and Retry-After when the limiter is full, and recovers', async () => {
    const gate = deferred();
    const t = setup({ gate: gate.promise, limiter: new TransformLimiter({ concurrency: 1, queueLimit: 0, retryAfterSec: 5 }) });
    const meta = await t.put('a/photo.jpg', await photo());
    await t.service.probe(meta);
    const busy = t.service.render(meta, { w: 20 }, undefined);
    await vi.waitFor(() => expect(t.transforms()).toBe(1));
    const err = await t.service.render(meta, { w: 21 }, undefined).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'overloaded', status: 503, headers: { 'Retry-After': '5' } });
    expect(t.limiter.stats()).toEqual({ running: 1, queued: 0, rejected: 1 });
    gate.resolve();
    await expect(busy).resolves.toMatchObject({ generated: true });
    await expect(t.service.render(meta, { w: 21 }, undefined)).resolves.toMatchObject({ generated: true });
  });

  it('answers 422 transform_timeout at the deadline, keeps the slot until the work ends, and stores the late result', async () => {
    const gate = deferred();
    const t = setup({ gate: gate.promise, limits: { timeoutMs: 30 } });
    const meta = await t.put('a/photo.jpg', await photo());
    await expect(t.service.render(meta, { w: 20, fmt: 'avif' }, undefined)).rejects.toMatchObject({ code: 'transform_timeout', status: 422 });
    // Still running: the slot is held and a new request joins the expired job instead of starting another.
    expect(t.limiter.stats().running).toBe(1);
    await expect(t.service.render(meta, { w: 20, fmt: 'avif' }, undefined)).rejects.toMatchObject({ code: 'transform_timeout' });
    expect(t.transforms()).toBe(1);
    gate.resolve();
    await vi.waitFor(() => expect(t.limiter.stats().running).toBe(0));
    const late = await t.service.render(meta, { w: 20, fmt: 'avif' }, undefined);
    expect([late.generated, late.meta.contentType, late.meta.width]).toEqual([false, 'image/avif', 20]);
    expect(t.transforms()).toBe(1);
  });

  it('refuses with 503 source_changed when the file changed between head and read', async () => {
    const old = await s.put('a/photo.jpg', await photo());
    await s.put('a/photo.jpg', await alphaPng());
    await expect(s.service.render(old, { w: 10 }, undefined)).rejects.toMatchObject({ code: 'source_changed', status: 503 });
  });

  it('answers 404 when the file was deleted between head and read', async () => {
    const meta = await s.put('a/photo.jpg', await photo());
    await s.store.delete('a/photo.jpg');
    await expect(s.service.render(meta, { w: 10 }, undefined)).rejects.toMatchObject({ code: 'not_found', status: 404 });
  });
});
