/**
 * The lab's daemons (BIRD, edges, agents, the origin): each started with `ip netns exec` in its
 * namespace (which execs the command, so the child's PID is the daemon's own), in its own process
 * group, its output appended to a log file. Each is known by its PID and signalled by it; nothing
 * is ever looked up by name. A daemon outlives its starter only when `unref`'d (`deploy/lab/up`);
 * the teardown script finds whatever is left through the namespaces.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { open } from 'node:fs/promises';

export interface DaemonSpec {
  /** For logs and errors: `pop1/edge`. */
  name: string;
  ns: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  /** Output (stdout and stderr) is appended here. */
  log: string;
}

export class Daemon {
  readonly pid: number;
  /** Resolves with the exit code (or the signal's name) once the process has ended. */
  readonly exited: Promise<number | string>;
  private ended = false;

  constructor(
    readonly spec: DaemonSpec,
    private readonly child: ChildProcess,
  ) {
    this.pid = child.pid!;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        this.ended = true;
        resolve(code ?? signal ?? 'unknown');
      });
    });
  }

  get running(): boolean {
    return !this.ended;
  }

  /** Send `signal` to this process (by PID); false when it has already ended. */
  signal(signal: NodeJS.Signals): boolean {
    if (this.ended) return false;
    try {
      process.kill(this.pid, signal);
      return true;
    } catch {
      return false;
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once it has ended. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.ended) return;
    this.signal('SIGCONT'); // a frozen process cannot act on SIGTERM
    this.signal('SIGTERM');
    if (await within(this.exited, graceMs)) return;
    this.signal('SIGKILL');
    await within(this.exited, 5000);
  }

  /** Let the starting process exit while this daemon runs on. */
  unref(): void {
    this.child.unref();
  }

  /** The last `bytes` of the log, for error messages. */
  async logTail(bytes = 4000): Promise<string> {
    return tail(this.spec.log, bytes);
  }
}

export function startDaemon(spec: DaemonSpec): Daemon {
  const fd = openSync(spec.log, 'a');
  try {
    const child = spawn('ip', ['netns', 'exec', spec.ns, spec.command, ...spec.args], {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...spec.env },
    });
    if (child.pid === undefined) throw new Error(`${spec.name}: could not start ${spec.command}`);
    return new Daemon(spec, child);
  } finally {
    closeSync(fd);
  }
}

async function within(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
  try {
    return await Promise.race([promise.then(() => true), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export async function tail(file: string, bytes: number): Promise<string> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (handle === undefined) return '';
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, bytes);
    const buffer = Buffer.alloc(length);
    await handle.read(buffer, 0, length, size - length);
    return buffer.toString('utf8');
  } finally {
    await handle.close();
  }
}

/**
 * Wait (at most `timeoutMs`) for a JSON log line of `daemon` that `match` accepts, looking only
 * at lines written after byte `from` of its log; fails early when the daemon ends.
 */
export async function waitForLog(daemon: Daemon, match: (line: Record<string, unknown>) => boolean, timeoutMs: number, from = 0): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  let offset = from;
  let partial = '';
  for (;;) {
    const handle = await open(daemon.spec.log, 'r');
    try {
      const { size } = await handle.stat();
      if (size > offset) {
        const buffer = Buffer.alloc(size - offset);
        await handle.read(buffer, 0, buffer.length, offset);
        offset = size;
        const lines = (partial + buffer.toString('utf8')).split('\n');
        partial = lines.pop()!;
        for (const line of lines) {
          if (!line.startsWith('{')) continue;
          let record: Record<string, unknown>;
          try {
            record = JSON.parse(line) as Record<string, unknown>;
          } catch {
            continue;
          }
          if (match(record)) return record;
        }
      }
    } finally {
      await handle.close();
    }
    if (!daemon.running) throw new Error(`${daemon.spec.name} (pid ${daemon.pid}) ended; its log ends:\n${await daemon.logTail()}`);
    if (Date.now() > deadline) throw new Error(`${daemon.spec.name}: no such log line within ${timeoutMs} ms; its log ends:\n${await daemon.logTail()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Waits for `check` to return something other than undefined, polling every `everyMs`; throws naming `what`. */
export async function waitFor<T>(what: string, check: () => Promise<T | undefined> | T | undefined, timeoutMs: number, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms${lastError === undefined ? '' : ` (last error: ${(lastError as Error).message})`}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The size of a file now (where to start waiting for new log lines). */
export async function sizeOf(file: string): Promise<number> {
  const handle = await open(file, 'r').catch(() => undefined);
  if (handle === undefined) return 0;
  try {
    return (await handle.stat()).size;
  } finally {
    await handle.close();
  }
}
