/**
 * Removing labs: `deploy/lab/down` for one lab, and, before a new lab starts, every lab a run
 * that died left behind (its starter's PID, the first part of the lab id, no longer exists and
 * `deploy/lab/up` did not leave it on purpose).
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DOWN_SCRIPT } from './checkout.js';
import { listNamespaces, runCommand } from './netns.js';
import { labIdOf, LAB_PREFIX } from './topology.js';

/** The lab's run folder. */
export function runFolder(id: string): string {
  return join(tmpdir(), `${LAB_PREFIX}${id}`);
}

/** Run deploy/lab/down for one lab: its processes killed by PID, its namespaces and run folder removed. */
export async function teardown(id: string): Promise<void> {
  await runCommand(DOWN_SCRIPT, [id], 60_000);
}

/** Tear down the labs whose starter has died, found by their namespaces and their run folders. */
export async function removeStaleLabs(log?: (line: string) => void): Promise<void> {
  const ids = new Set((await listNamespaces()).map(labIdOf).filter((id): id is string => id !== undefined));
  for (const dir of await readdir(tmpdir()).catch(() => [] as string[])) {
    const id = dir.startsWith(LAB_PREFIX) ? dir.slice(LAB_PREFIX.length) : undefined;
    if (id !== undefined && labIdOf(`${LAB_PREFIX}${id}-x`) === id) ids.add(id);
  }
  for (const id of ids) {
    if (existsSync(join(runFolder(id), 'detached'))) continue;
    const owner = Number(id.split('-')[0]);
    if (Number.isInteger(owner) && owner > 0 && alive(owner)) continue;
    log?.(`removing the lab left by a run that ended: ${id}`);
    // Best effort: two labs starting at once both found the same leftover and one's `ip netns
    // del` lost the race ("Cannot remove namespace file"); a leftover shares no name with a new
    // lab, so it is no reason for the new one not to start.
    await teardown(id).catch((err: Error) => log?.(`could not remove lab ${id}: ${err.message}`));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
