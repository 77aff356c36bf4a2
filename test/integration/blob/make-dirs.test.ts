/**
 * makeDirs, the `mkdir -p` of configured roots (an edge's cacheDir, an origin's dataDir): it
 * makes what is missing, accepts what exists, and fails where Node's recursive mkdir would spin.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import * as fsp from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { makeDirs } from '../../../src/blob/disk-fs.js';

describe('makeDirs', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'anycdn-make-dirs-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('makes every missing level, and accepts a folder that exists', async () => {
    const deep = join(dir, 'a', 'b', 'c');
    await makeDirs(fsp, deep);
    expect((await stat(deep)).isDirectory()).toBe(true);
    await makeDirs(fsp, deep);
    await makeDirs(fsp, dir);
  });

  it('fails below a file with the error of the level that cannot be made', async () => {
    await writeFile(join(dir, 'file'), 'x');
    await expect(makeDirs(fsp, join(dir, 'file', 'sub'))).rejects.toMatchObject({ code: 'ENOTDIR' });
  });

  it.skipIf(!existsSync('/proc/self'))('fails under /proc instead of retrying forever', async () => {
    await expect(makeDirs(fsp, '/proc/anycdn-not-a-folder/cache')).rejects.toMatchObject({ code: 'ENOENT', path: '/proc/anycdn-not-a-folder' });
  });
});
