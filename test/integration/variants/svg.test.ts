/**
 * SVG sources through the pipeline: rasterised sharp at the requested size, and never a way to
 * read local files (<image>, external entities) or run scripts.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ImageParams, OutputFormat } from '../../../src/image/params.js';
import { DEFAULT_IMAGE_LIMITS } from '../../../origin/variants/limits.js';
import { DEFAULT_QUALITY, transformImage } from '../../../origin/variants/pipeline.js';
import { probeImage } from '../../../origin/variants/probe.js';

async function render(data: Buffer, params: ImageParams, output: OutputFormat) {
  const probed = await probeImage(data, DEFAULT_IMAGE_LIMITS);
  return transformImage(data, probed, params, output, { quality: DEFAULT_QUALITY, avifEffort: 2, limits: DEFAULT_IMAGE_LIMITS });
}

/** RGBA of the pixel at (x, y). */
async function pixel(image: Buffer, x: number, y: number): Promise<number[]> {
  const { data, info } = await sharp(image).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
  const offset = (y * info.width + x) * 4;
  return [...data.subarray(offset, offset + 4)];
}

describe('transformImage with SVG', () => {
  let dir: string;
  let redPng: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'anycdn-svg-'));
    redPng = path.join(dir, 'red.png');
    await writeFile(redPng, await sharp({ create: { width: 20, height: 20, channels: 3, background: { r: 255, g: 0, b: 0 } } }).png().toBuffer());
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('rasterises at the requested size, sharp (not an upscaled 72 dpi bitmap)', async () => {
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10" width="10" height="10"><rect x="0" y="0" width="5" height="10" fill="#000"/><rect x="5" y="0" width="5" height="10" fill="#fff"/></svg>');
    const out = await render(svg, { w: 400 }, 'png');
    expect([out.width, out.height]).toEqual([400, 400]);
    // The edge at x=200 is crisp: the pixels either side are pure black and pure white.
    expect(await pixel(out.data, 199, 100)).toEqual([0, 0, 0, 255]);
    expect(await pixel(out.data, 200, 100)).toEqual([255, 255, 255, 255]);
  });

  it('loads no local file through <image>, whether file: URL, absolute or relative path', async () => {
    for (const href of [`file://${redPng}`, redPng, 'red.png']) {
      const svg = Buffer.from(
        `<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="20" height="20">` +
          `<rect width="20" height="20" fill="#00f"/>` +
          `<image href="${href}" width="20" height="20"/><image xlink:href="${href}" width="20" height="20"/></svg>`,
      );
      const out = await render(svg, {}, 'png');
      expect(await pixel(out.data, 10, 10), href).toEqual([0, 0, 255, 255]);
    }
  });

  it('ignores scripts, event handlers and javascript: links, and still rasterises', async () => {
    const svg = Buffer.from(
      '<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="30" height="30" onload="alert(1)">' +
        '<script>document.querySelector("rect").setAttribute("fill", "#f00")</script>' +
        '<rect width="30" height="30" fill="#0f0"/><a xlink:href="javascript:alert(1)"><circle cx="15" cy="15" r="1" fill="#0f0"/></a></svg>',
    );
    const out = await render(svg, { w: 60 }, 'png');
    expect((await sharp(out.data).metadata()).format).toBe('png');
    expect(await pixel(out.data, 30, 30)).toEqual([0, 255, 0, 255]);
    expect(out.data.includes('script')).toBe(false);
  });

  it('refuses external XML entities (422) rather than reading the file', async () => {
    const svg = Buffer.from(
      `<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file://${redPng}">]>` +
        '<svg xmlns="http://www.w3.org/2000/svg" width="20" height="20"><text y="10">&xxe;</text></svg>',
    );
    await expect(render(svg, {}, 'png')).rejects.toMatchObject({ code: 'corrupt_image', status: 422 });
  });
});
