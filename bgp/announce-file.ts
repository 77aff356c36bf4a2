/**
 * The announce include on disk. It is replaced atomically (write a temporary file beside it,
 * fsync, rename, fsync the folder), so BIRD reading it during a `configure` sees either the old
 * or the new decision, never half a file, and a crash leaves one of the two.
 */
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { announceInclude, parseAnnounceInclude, type AnnounceState } from './announce.js';

export async function writeAnnounceFile(path: string, state: AnnounceState): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    const file = await open(tmp, 'w', 0o644);
    try {
      await file.writeFile(announceInclude(state));
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** The state the file says, or undefined when it is missing or not one we wrote. */
export async function readAnnounceFile(path: string): Promise<AnnounceState | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : parseAnnounceInclude(text);
}
