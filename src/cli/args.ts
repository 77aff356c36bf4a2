/**
 * Shared plumbing for subcommands: the I/O they are handed, flag parsing with usage errors, and
 * waiting for a termination signal.
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

export class UsageError extends Error {}

export function parseFlags<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, usage: string) {
  try {
    return parseArgs({ args, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n\n${usage}`);
  }
}

/** Resolve when SIGINT or SIGTERM arrives (once), returning its name. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      resolve(signal);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  });
}
