import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { nodeDiskFs } from '../../../src/blob/disk-fs.js';
import { RecencyMarks, slotsFor } from '../../../src/blob/disk-recency.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

async function tmp(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'anycdn-marks-'));
  dirs.push(dir);
  return dir;
}

const keys = Array.from({ length: 500 }, (_, i) => `cdn.example/img/${i}.jpg?w=${i % 7}`);

describe('RecencyMarks', () => {
  it.each([
    [0, 64],
    [256 * 1024, 64],
    [1024 * 1024, 256],
    [10 * 1024 ** 3, 2 ** 21],
    [1024 ** 4, 2 ** 21],
  ])('sizes the table from maxBytes %d: %d slots', (maxBytes, slots) => {
    expect(slotsFor(maxBytes)).toBe(slots);
  });

  it('finds every key read at or after the generation it was written in, and no key read before it', () => {
    const marks = RecencyMarks.empty(2 ** 16);
    keys.forEach((k, i) => marks.note(k, 10 + (i % 5)));
    keys.forEach((k, i) => {
      expect(marks.readSince(k, 10 + (i % 5))).toBe(true);
      expect(marks.readSince(k, 10)).toBe(true);
    });
    expect(keys.filter((k) => marks.readSince(k, 15))).toEqual([]);
    expect(RecencyMarks.empty(64).readSince(keys[0]!, 1)).toBe(false);
  });

  it('keeps every mark through a save and a load into a smaller or a larger table, lowering marks above the head', async () => {
    const dir = await tmp();
    const marks = RecencyMarks.empty(1024);
    keys.forEach((k, i) => marks.note(k, 3 + (i % 4)));
    await marks.save(nodeDiskFs, dir, join(dir, 'recency'), 6);
    expect((await readFile(join(dir, 'recency'))).length).toBe(12 + 1024 * 4);
    for (const slots of [64, 1024, 4096]) {
      const back = await RecencyMarks.load(nodeDiskFs, join(dir, 'recency'), slots, 100);
      keys.forEach((k, i) => expect(back.readSince(k, 3 + (i % 4))).toBe(true));
    }
    const lowered = await RecencyMarks.load(nodeDiskFs, join(dir, 'recency'), 1024, 4);
    expect(keys.every((k) => lowered.readSince(k, 3))).toBe(true);
    expect(keys.some((k) => lowered.readSince(k, 5))).toBe(false);
  });

  it('starts empty when the file is missing, truncated or not a table', async () => {
    const dir = await tmp();
    const marks = RecencyMarks.empty(256);
    keys.forEach((k) => marks.note(k, 9));
    await marks.save(nodeDiskFs, dir, join(dir, 'recency'), 9);
    const whole = await readFile(join(dir, 'recency'));
    await writeFile(join(dir, 'cut'), whole.subarray(0, whole.length - 4));
    await writeFile(join(dir, 'other'), Buffer.concat([Buffer.from('XXXX'), whole.subarray(4)]));
    for (const name of ['missing', 'cut', 'other']) {
      const back = await RecencyMarks.load(nodeDiskFs, join(dir, name), 256, 100);
      expect(keys.some((k) => back.readSince(k, 1))).toBe(false);
    }
  });
});
