/**
 * Tearing labs down after a failed run: `deploy/lab/down ID` and the clean-up every new lab does
 * first (removeStaleLabs), on stand-ins for labs that crashed — namespaces with the lab's names,
 * a process left running inside one, a run folder — without building a whole lab.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DOWN_SCRIPT } from '../../deploy/lab/checkout.js';
import { removeStaleLabs, teardown } from '../../deploy/lab/cleanup.js';
import { listNamespaces, runCommand } from '../../deploy/lab/netns.js';
import { assertLabInCi, noLab } from '../support/lab.js';

assertLabInCi();

/** A PID that belonged to a process which has ended. */
async function deadPid(): Promise<number> {
  const child = spawn('true');
  await new Promise((r) => child.once('exit', r));
  return child.pid!;
}

const made: string[] = [];
const sleepers: ChildProcess[] = [];
afterAll(async () => {
  for (const s of sleepers) s.kill('SIGKILL');
  for (const id of made) await teardown(id).catch(() => undefined);
});

/** A stand-in lab: two namespaces joined by a veth pair, a run folder, optionally a process inside. */
async function fakeLab(id: string, options: { sleeper?: boolean; detached?: boolean } = {}): Promise<{ namespaces: string[]; dir: string; sleeper?: ChildProcess }> {
  made.push(id);
  const namespaces = [`anycdn-lab-${id}-pop1`, `anycdn-lab-${id}-r1`];
  for (const ns of namespaces) await runCommand('ip', ['netns', 'add', ns]);
  await runCommand('ip', ['link', 'add', 'r1', 'netns', namespaces[0]!, 'type', 'veth', 'peer', 'name', 'pop1', 'netns', namespaces[1]!]);
  const dir = join(tmpdir(), `anycdn-lab-${id}`);
  await mkdir(join(dir, 'logs'), { recursive: true });
  if (options.detached) await writeFile(join(dir, 'detached'), '');
  let sleeper: ChildProcess | undefined;
  if (options.sleeper) {
    sleeper = spawn('ip', ['netns', 'exec', namespaces[0]!, 'sleep', '600'], { stdio: 'ignore' });
    sleepers.push(sleeper);
    // Stopped, like a frozen PoP: SIGKILL must end it all the same.
    await new Promise((r) => setTimeout(r, 200));
    sleeper.kill('SIGSTOP');
  }
  return { namespaces, dir, sleeper };
}

describe.skipIf(noLab !== undefined)(`anycast lab: teardown${noLab ? ` (skipped: ${noLab})` : ''}`, () => {
  it('deploy/lab/down ID kills what runs in the lab, deletes its namespaces and its run folder, and can run again', async () => {
    const id = `${await deadPid()}-d0a1`;
    const lab = await fakeLab(id, { sleeper: true });
    const other = await fakeLab(`${process.pid}-d0a2`);
    const exited = new Promise((r) => lab.sleeper!.once('exit', (code, signal) => r(signal)));

    const { stdout } = await runCommand(DOWN_SCRIPT, [id]);
    expect(stdout).toBe('removed 2 namespaces\n');
    expect(await exited).toBe('SIGKILL');
    const left = await listNamespaces();
    for (const ns of lab.namespaces) expect(left).not.toContain(ns);
    for (const ns of other.namespaces) expect(left).toContain(ns);
    expect(existsSync(lab.dir)).toBe(false);
    expect(existsSync(other.dir)).toBe(true);
    expect((await runCommand(DOWN_SCRIPT, [id])).stdout).toBe('removed 0 namespaces\n');
    await expect(runCommand(DOWN_SCRIPT, ['../etc'])).rejects.toThrow('not a lab id: ../etc');
  });

  it('a new lab first removes those whose starter has died, and keeps running and detached ones', async () => {
    const stale = await fakeLab(`${await deadPid()}-5a1e`, { sleeper: true });
    const running = await fakeLab(`${process.pid}-5a1f`);
    const detached = await fakeLab(`${await deadPid()}-5a20`, { detached: true });
    await removeStaleLabs();
    const left = await listNamespaces();
    for (const ns of stale.namespaces) expect(left).not.toContain(ns);
    expect(existsSync(stale.dir)).toBe(false);
    for (const ns of [...running.namespaces, ...detached.namespaces]) expect(left).toContain(ns);
    expect([existsSync(running.dir), existsSync(detached.dir)]).toEqual([true, true]);
  });
});
