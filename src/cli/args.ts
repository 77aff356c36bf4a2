/**
 * Shared plumbing for subcommands: the I/O they are handed, flag parsing with usage errors, and
 * termination signals.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import type { Env } from '../config/load.js';

export interface CommandIo {
  env: Env;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
}

/** A subcommand: arguments after its name → exit code. */
export type Command = (args: string[], io: CommandIo) => Promise<number>;

/** The I/O of a long-running command (a server): termination signals too, listened for since before it loaded. */
export interface ServiceIo extends CommandIo {
  signals: TerminationSignals;
}

/** A long-running subcommand: it runs until a termination signal, then stops what it started. */
export type ServiceCommand = (args: string[], io: ServiceIo) => Promise<number>;

export class UsageError extends Error {}

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usage}`);
  }
}

/**
 * SIGINT and SIGTERM, listened for from the moment `watchTerminationSignals` is called until
 * `stop()`. A signal nobody listens for ends the process on the spot, with nothing drained or
 * closed, and a supervisor may stop a service the moment it says it is up, or before: so main()
 * starts listening before it even loads a long-running command, and keeps every signal that comes
 * before the command waits for it. The command stops what it started, in order, and exits 0.
 */
export interface TerminationSignals {
  /** How many have come so far. */
  readonly count: number;
  /** Resolves with the name of the n-th signal (1: the first), at once if it has come already. */
  nth(n: number): Promise<NodeJS.Signals>;
  /** Stop listening: from then on a signal has its default effect again (the process ends). */
  stop(): void;
}

export function watchTerminationSignals(): TerminationSignals {
  const received: NodeJS.Signals[] = [];
  let waiting: { n: number; resolve: (signal: NodeJS.Signals) => void }[] = [];
  const onSignal = (signal: NodeJS.Signals): void => {
    received.push(signal);
    const due = waiting.filter((w) => w.n <= received.length);
    waiting = waiting.filter((w) => w.n > received.length);
    for (const w of due) w.resolve(received[w.n - 1]!);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return {
    get count() {
      return received.length;
    },
    nth(n) {
      const signal = received[n - 1];
      if (signal !== undefined) return Promise.resolve(signal);
      return new Promise((resolve) => waiting.push({ n, resolve }));
    },
    stop() {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}

/** A signal taken from the moment `holdSignal` is called, and acted on once the service is up. */
export interface HeldSignal {
  /** From now on `act` answers the signal; one that came before is answered now, once. */
  actWith(act: () => void): void;
  /** Stop listening: the signal has its default effect again. */
  release(): void;
}

/**
 * SIGUSR1 (reopen the logs) and SIGHUP (reload certificates) for a service that is starting: Node's
 * own answer would be to open its inspector or to end the process, and dropping one that comes
 * during the start would lose what it asked for (logrotate renamed the file and waits for the
 * reopen). So the signal is remembered and acted on once the service says how.
 */
export function holdSignal(signal: 'SIGUSR1' | 'SIGHUP'): HeldSignal {
  let act: (() => void) | undefined;
  let asked = false;
  const onSignal = (): void => {
    if (act === undefined) asked = true;
    else act();
  };
  process.on(signal, onSignal);
  return {
    actWith(fn) {
      act = fn;
      if (asked) {
        asked = false;
        fn();
      }
    },
    release() {
      process.off(signal, onSignal);
    },
  };
}
