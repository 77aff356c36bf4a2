/**
 * A real pino logger whose JSON lines a test can read back: for log lines the behaviour under test
 * must write (a refused certificate names its file).
 */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';

export interface CapturedLog {
  logger: Logger;
  lines(): Record<string, unknown>[];
  /** Resolves with the first line (already written or to come) whose `msg` passes `match`; rejects after `timeoutMs`. */
  waitFor(match: (msg: string, line: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
}

export function capturedLog(level = 'info'): CapturedLog {
  const lines: Record<string, unknown>[] = [];
  const waiting = new Set<() => void>();
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const text of chunk.toString().split('\n')) if (text !== '') lines.push(JSON.parse(text) as Record<string, unknown>);
      for (const wake of waiting) wake();
      cb();
    },
  });
  return {
    logger: createLogger({ level, destination }),
    lines: () => lines,
    waitFor(match, timeoutMs = 10_000) {
      return new Promise((resolve, reject) => {
        const check = (): boolean => {
          const found = lines.find((l) => match(String(l['msg']), l));
          if (found === undefined) return false;
          waiting.delete(wake);
          clearTimeout(timer);
          resolve(found);
          return true;
        };
        const wake = (): void => void check();
        const timer = setTimeout(() => {
          waiting.delete(wake);
          reject(new Error(`no such log line within ${timeoutMs} ms; lines:\n${lines.map((l) => JSON.stringify(l)).join('\n')}`));
        }, timeoutMs);
        waiting.add(wake);
        check();
      });
    },
  };
}
