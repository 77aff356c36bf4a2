import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor, PURGE_CURSOR_FILE, PurgeCursorFile } from '../../../edge/purge/purge-cursor.js';

describe('purge cursor file', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'anycdn-cursor-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes the cursor whole and reads it back', async () => {
    const file = new PurgeCursorFile(dir);
    expect(await file.read()).toBeUndefined();
    await file.write({ log: '3f9a1c0b7d2e', seq: 42, staleBefore: 1_767_225_600_000, absentBefore: 0 });
    expect(await readFile(join(dir, PURGE_CURSOR_FILE), 'utf8')).toBe('{"anycdnPurgeCursor":1,"log":"3f9a1c0b7d2e","seq":42,"staleBefore":1767225600000,"absentBefore":0}\n');
    expect(await new PurgeCursorFile(dir).read()).toEqual({ log: '3f9a1c0b7d2e', seq: 42, staleBefore: 1_767_225_600_000, absentBefore: 0 });
    expect((await readdir(dir)).sort()).toEqual([PURGE_CURSOR_FILE]);
  });

  it('coalesces writes: the newest waiting cursor is the one written, and every caller hears when it is on disk', async () => {
    const file = new PurgeCursorFile(dir);
    const writes = [1, 2, 3, 4, 5].map((seq) => file.write({ log: null, seq, staleBefore: 0, absentBefore: 0 }));
    await Promise.all(writes);
    expect(await file.read()).toEqual({ log: null, seq: 5, staleBefore: 0, absentBefore: 0 });
  });

  it('a failed write fails its caller and the next write still lands', async () => {
    const file = new PurgeCursorFile(join(dir, 'missing-folder'));
    await expect(file.write({ log: null, seq: 1, staleBefore: 0, absentBefore: 0 })).rejects.toThrow(/ENOENT/);
    const good = new PurgeCursorFile(dir);
    await good.write({ log: null, seq: 2, staleBefore: 0, absentBefore: 0 });
    expect((await good.read()) as { seq: number }).toMatchObject({ seq: 2 });
  });

  it('says what is wrong with a file it cannot use, and ignores a temp file a crash left', async () => {
    await writeFile(join(dir, `${PURGE_CURSOR_FILE}.0a1b2c3d.tmp`), '{"anycdnPurgeCursor":1,"log":null,"seq":99');
    expect(await new PurgeCursorFile(dir).read()).toBeUndefined();
    await writeFile(join(dir, PURGE_CURSOR_FILE), '{"anycdnPurgeCursor":1,"log":null,"seq":');
    expect(await new PurgeCursorFile(dir).read()).toEqual({ problem: 'not JSON' });
  });

  it.each([
    ['{"anycdnPurgeCursor":1,"log":null,"seq":0,"staleBefore":0,"absentBefore":0}', { log: null, seq: 0, staleBefore: 0, absentBefore: 0 }],
    ['{"anycdnPurgeCursor":2,"log":null,"seq":0,"staleBefore":0,"absentBefore":0}', 'format version 2 is not one this anycdn reads (1)'],
    ['{"seq":1}', 'not a purge cursor'],
    ['{"anycdnPurgeCursor":1,"log":"LOG","seq":1,"staleBefore":0,"absentBefore":0}', 'log must be null or a log id'],
    ['{"anycdnPurgeCursor":1,"log":null,"seq":-1,"staleBefore":0,"absentBefore":0}', 'seq must be a whole number ≥ 0'],
    ['{"anycdnPurgeCursor":1,"log":null,"seq":1,"staleBefore":1.5,"absentBefore":0}', 'staleBefore must be a whole number ≥ 0'],
    ['{"anycdnPurgeCursor":1,"log":null,"seq":1,"staleBefore":0}', 'absentBefore must be a whole number ≥ 0'],
  ])('decodes %s', (text, expected) => {
    expect(decodeCursor(text)).toEqual(expected);
  });

  it('encodes what it decodes', () => {
    const c = { log: 'abcdef012345', seq: 7, staleBefore: 3, absentBefore: 4 };
    expect(decodeCursor(encodeCursor(c))).toEqual(c);
  });
});
