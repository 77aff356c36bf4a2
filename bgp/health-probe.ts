/**
 * One probe of the edge's `/_cdn/healthz`: a GET on a new connection (so a listener that stopped
 * accepting fails it), the whole answer within `timeoutMs`, at most 64 KiB of body read.
 * 200 is healthy; 503 whose JSON says `"status":"draining"` is a planned stop; anything else,
 * a refused connection or no answer in time fails, with the reason. An answer that arrived in
 * time but was read late because the agent itself was not running is not a failure.
 */
import { request } from 'node:http';
import type { ProbeResult } from './hysteresis.js';

const MAX_BODY = 64 * 1024;

export function probeHealth(url: string, timeoutMs: number): Promise<ProbeResult> {
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: ProbeResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      req.destroy();
      resolve(result);
    };
    // When this process was not scheduled for a while, the timer fires late, and an answer that
    // came in meanwhile is waiting in the socket: timers run before I/O is polled, so the verdict
    // waits one turn (setImmediate runs after the poll) and an answer already there wins.
    const timer = setTimeout(() => setImmediate(() => finish({ kind: 'fail', reason: `no answer within ${timeoutMs} ms` })), timeoutMs);
    const req = request(url, { method: 'GET', agent: false, headers: { accept: 'application/json', connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (chunk: Buffer) => {
        size += chunk.length;
        if (size <= MAX_BODY) chunks.push(chunk);
        else finish(verdict(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
      });
      res.on('end', () => finish(verdict(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'))));
      res.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'fail', reason: `answer cut short: ${err.code ?? err.message}` }));
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish({ kind: 'fail', reason: err.code ?? err.message }));
    req.end();
  });
}

/** The probe's result from a complete answer. */
export function verdict(status: number, body: string): ProbeResult {
  if (status === 200) return { kind: 'ok' };
  if (status === 503 && statusField(body) === 'draining') return { kind: 'draining' };
  const detail = body.replace(/\s+/g, ' ').trim().slice(0, 200);
  return { kind: 'fail', reason: detail === '' ? `status ${status}` : `status ${status}: ${detail}` };
}

function statusField(body: string): unknown {
  try {
    const value = JSON.parse(body) as unknown;
    return value !== null && typeof value === 'object' ? (value as Record<string, unknown>)['status'] : undefined;
  } catch {
    return undefined;
  }
}
