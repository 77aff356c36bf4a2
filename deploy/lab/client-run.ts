/**
 * Running the lab's client (client.ts) in a client network's namespace from this process: its
 * records collected as they are printed, stopped by closing its standard input.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { CLIENT } from './checkout.js';
import { parseRecord, succeeded, type ClientRecord } from './measure.js';
import { waitFor } from './processes.js';
import { LAB_URL, type LabClient } from './topology.js';

/** Milliseconds on the machine's clock, the one the clients stamp their records with. */
export function labClock(): number {
  return performance.timeOrigin + performance.now();
}

/** How long after its last request's timeout a stopping client may take to exit before it is killed. */
const STOP_GRACE_MS = 30_000;

export interface ClientOptions {
  keepAlive?: boolean;
  retry?: boolean;
  /** Milliseconds between requests. Default 20. */
  interval?: number;
  /** Milliseconds before an unanswered request fails. Default 2000. */
  timeout?: number;
  /** Default: the lab file through the anycast address. */
  url?: string;
  /** Append the client's records (its output lines) to this file too, for a kept lab's logs. */
  log?: string;
}

export interface ClientRun {
  client: LabClient;
  /** Every attempt so far, in the order the client printed them. */
  records: ClientRecord[];
  /** Resolves once the client has printed its first record: it runs and sends. */
  ready: Promise<void>;
  /** Stop sending; resolves with every record once in-flight requests are done. */
  stop(): Promise<ClientRecord[]>;
}

export function startClient(client: LabClient, options: ClientOptions = {}): ClientRun {
  const timeout = options.timeout ?? 2000;
  const args = [CLIENT, '--stop-with-stdin', '--url', options.url ?? LAB_URL, '--interval', String(options.interval ?? 20), '--timeout', String(timeout)];
  if (options.keepAlive) args.push('--keep-alive');
  if (options.retry) args.push('--retry');
  const child = spawn('ip', ['netns', 'exec', client.ns, process.execPath, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const records: ClientRecord[] = [];
  // Written as it comes, never piped: a slow disk must not hold back the records (a pipe pauses its source).
  const log = options.log === undefined ? undefined : createWriteStream(options.log, { flags: 'a' });
  // Done once the client's output has ended and is on disk; a log that cannot be written is no reason to fail a run.
  const logged = new Promise<void>((resolve) => (log === undefined ? resolve() : log.once('close', () => resolve()).on('error', () => resolve())));
  child.stdout.once('end', () => log?.end());
  let partial = '';
  let errors = '';
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    markReady = resolve;
    child.once('exit', (code, signal) => reject(new Error(`client ${client.name} exited ${code ?? signal} before its first request: ${errors}`)));
  });
  ready.catch(() => undefined); // awaited by whoever needs it; an unawaited rejection is no crash
  child.stdout.setEncoding('utf8').on('data', (text: string) => {
    log?.write(text);
    const lines = (partial + text).split('\n');
    partial = lines.pop()!;
    for (const line of lines) {
      const record = parseRecord(line);
      if (record !== undefined) records.push(record);
    }
    if (records.length > 0) markReady();
  });
  child.stderr.setEncoding('utf8').on('data', (text: string) => (errors = (errors + text).slice(-4000)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<ClientRecord[]> | undefined;
  return {
    client,
    records,
    ready,
    stop() {
      stopping ??= (async () => {
        child.stdin.end();
        if (child.exitCode === null && child.signalCode === null) {
          // Its last requests end within `timeout`, but on a loaded machine (load 20, the lab at
          // nice 10) the client itself took more than 3 s more to get there and exit.
          const killer = setTimeout(() => child.kill('SIGKILL'), timeout + STOP_GRACE_MS);
          await exited;
          clearTimeout(killer);
        }
        await logged;
        if (child.exitCode !== 0) throw new Error(`client ${client.name} exited ${child.exitCode ?? child.signalCode}: ${errors}`);
        return records;
      })();
      return stopping;
    },
  };
}

/**
 * How long a client may take to print its first record. Starting Node.js in a namespace is a
 * fraction of a second on an idle machine, but took 5 s and more on a loaded one (load 13, the
 * lab at nice 10): a wait measured from the spawn then timed the machine, not the lab.
 */
export const CLIENT_START_TIMEOUT_MS = 60_000;

/**
 * Wait until a client has had a successful answer from `by` to a request sent after `after`:
 * `timeoutMs` from when the client runs (its first record), not from its spawn.
 */
export async function answeredBy(run: ClientRun, by: string, after: number, timeoutMs: number): Promise<ClientRecord> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${run.client.name}: no request within ${CLIENT_START_TIMEOUT_MS} ms of its start`)), CLIENT_START_TIMEOUT_MS)));
  try {
    await Promise.race([run.ready, late]);
  } finally {
    clearTimeout(timer);
  }
  return waitFor(`${run.client.name} answered by ${by}`, () => run.records.find((r) => r.start > after && r.by === by && succeeded(r)), timeoutMs, 10);
}
