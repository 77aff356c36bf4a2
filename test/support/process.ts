/**
 * Running the built `anycdn` CLI as a child process for tests that must kill a real server.
 * Requires `dist/` (npm test builds it first). Every child is tracked by PID and killed in `stopAll`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/src/cli/anycdn.cjs', import.meta.url));
export const cliBuilt = existsSync(CLI);

export interface CliProcess {
  child: ChildProcess;
  pid: number;
  /** Resolves with the first JSON log line whose `msg` equals `message`. */
  waitForLog(message: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** Resolves as soon as the output (stdout and stderr) contains `text`. */
  waitForOutput(text: string, timeoutMs?: number): Promise<void>;
  output(): string;
}

const running = new Set<ChildProcess>();

/** `env` is added to this process's environment; a variable set to undefined is removed. */
export function startCli(args: string[], env: Record<string, string | undefined> = {}): CliProcess {
  // Node 22.1+ keeps its compile cache under the temp folder (src/cli/anycdn.cts): the test
  // runner's, not a TMPDIR a test gives the child and expects to find empty after it.
  const compileCache = process.env['NODE_COMPILE_CACHE'] ?? join(tmpdir(), 'node-compile-cache');
  const merged: NodeJS.ProcessEnv = { ...process.env, MALLOC_ARENA_MAX: '2', NODE_COMPILE_CACHE: compileCache, ...env };
  for (const [name, value] of Object.entries(merged)) if (value === undefined) delete merged[name];
  const child = spawn(process.execPath, [CLI, ...args], {
    env: merged,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  child.once('exit', () => running.delete(child));
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  return {
    child,
    pid: child.pid!,
    output: () => out,
    waitForOutput(text, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!out.includes(text)) return;
          cleanup();
          resolve();
        };
        const deadline = setTimeout(() => {
          cleanup();
          reject(new Error(`no "${text}" within ${timeoutMs} ms; output:\n${out}`));
        }, timeoutMs);
        const onExit = (code: number | null): void => {
          cleanup();
          reject(new Error(`process exited (${code}) before "${text}"; output:\n${out}`));
        };
        const cleanup = (): void => {
          clearTimeout(deadline);
          child.stdout!.off('data', check);
          child.stderr!.off('data', check);
          child.off('exit', onExit);
        };
        // Added after the listeners that collect `out`, so `out` has the chunk when this runs.
        child.stdout!.on('data', check);
        child.stderr!.on('data', check);
        child.once('exit', onExit);
        check();
      });
    },
    waitForLog(message, timeoutMs = 15_000) {
      return new Promise((resolve, reject) => {
        const deadline = setTimeout(() => {
          cleanup();
          reject(new Error(`no "${message}" log within ${timeoutMs} ms; output:\n${out}`));
        }, timeoutMs);
        const check = (): void => {
          for (const line of out.split('\n')) {
            if (!line.startsWith('{')) continue;
            const rec = JSON.parse(line) as Record<string, unknown>;
            if (rec['msg'] === message) {
              cleanup();
              resolve(rec);
              return;
            }
          }
        };
        const onExit = (code: number | null): void => {
          cleanup();
          reject(new Error(`process exited (${code}) before "${message}"; output:\n${out}`));
        };
        const cleanup = (): void => {
          clearTimeout(deadline);
          child.stdout!.off('data', check);
          child.off('exit', onExit);
        };
        child.stdout!.on('data', check);
        child.once('exit', onExit);
        check();
      });
    },
  };
}

/** Wait for a child to exit (after a kill), bounded. */
export function exited(child: ChildProcess, timeoutMs = 10_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('process did not exit')), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve(code);
    });
  });
}

export async function stopAll(): Promise<void> {
  for (const child of running) {
    child.kill('SIGKILL');
    await exited(child).catch(() => undefined);
  }
}
