/**
 * The edge's side of the origin's purge stream (README "The purge stream (for edges)"): one
 * long-lived `GET /_cdn/purges?after=SEQ&node=POP/NODE&log=ID` (Server-Sent Events, Bearer edge
 * token), its purges applied in order through the node (purge-node.ts: every process of the node
 * before anything is acknowledged), the cursor moved and persisted, and what was applied
 * acknowledged with `POST /_cdn/purges/ack` (one acknowledgement in flight at a time, always the
 * newest sequence number).
 *
 *   connect → hello → (reset) → purge… / heartbeat… → broken, ended or silent → wait → connect
 *
 * - Purges that arrive together are applied together (one batch per read from the socket), so a
 *   burst costs one index transaction and one acknowledgement rather than one each.
 * - A stream silent for three heartbeats (a half-open connection: the origin vanished without a
 *   FIN, a proxy stopped forwarding) is dropped and opened again; so is one that breaks or ends.
 *   Reconnects back off with jitter (reconnect.ts) and resume from the cursor, so nothing is lost.
 * - A `reset` (the log was compacted past the cursor, replaced, or is behind it) makes the whole
 *   cache stale (NodePurger.reset); so does a gap in the sequence numbers, which should never come.
 * - Caught up: the stream's head at hello is applied. Until then the node revalidates stored
 *   objects before serving them (NodePurger's start watermark).
 */
import type { Logger } from '../../src/log.js';
import type { Purge } from '../../src/purge/purge-request.js';
import { newClient, newPool, poolRequest, undiciErrors, type Client, type Pool } from '../undici-parts.js';
import type { UpstreamTls } from '../upstream.js';
import type { NodePurger } from './purge-node.js';
import type { PurgeMetrics, PurgeStreamStatus } from './purge-metrics.js';
import { DEFAULT_BACKOFF, reconnectDelay, retryAfterSeconds, silenceLimit, type AttemptEnd, type BackoffPolicy } from './reconnect.js';
import { SseParser } from './sse-parser.js';
import { readStreamEvent, type HelloEvent, type PurgeEvent, type StreamEvent } from './stream-events.js';

export interface PurgeSubscriberOptions {
  /** The origin's base URL (`purgeFrom`, default the edge's `upstream`). */
  url: string;
  /** The edge token. */
  token: string;
  /** `POP/NODE`. */
  node: string;
  purger: NodePurger;
  metrics: PurgeMetrics;
  logger: Logger;
  now: () => number;
  random?: () => number;
  backoff?: BackoffPolicy;
  /** An https `url` is verified with these (the edge's `upstreamTls`: CA, client certificate); default Node's roots. */
  tls?: UpstreamTls;
  /** Connecting and waiting for the stream's answer, each. Default 10 s. */
  connectTimeoutMs?: number;
  /** Silence tolerated before the first heartbeat interval is known (before hello). Default 10 s. */
  helloTimeoutMs?: number;
}

/** Why a session ended, for the log, the metrics and the next wait. */
class SessionEnd extends Error {
  constructor(
    readonly reason: 'refused' | 'failed' | 'silent' | 'protocol' | 'apply' | 'closed',
    message: string,
    readonly end: AttemptEnd = { kind: 'failed' },
  ) {
    super(message);
  }
}

export class PurgeSubscriber {
  private readonly base: URL;
  private acks: Pool;
  private closed = false;
  private running: Promise<void> | undefined;
  private stream: Client | undefined;
  private wake: (() => void) | undefined;
  private connected = false;
  private headSeq = 0;
  private behindSince: number | undefined;
  private acked = 0;
  private acking = false;
  private attempts = 0;
  private readonly caughtUpWaiters = new Set<() => void>();

  constructor(private readonly o: PurgeSubscriberOptions) {
    this.base = new URL(o.url);
    this.acks = this.ackPool();
  }

  private ackPool(): Pool {
    const timeout = this.o.connectTimeoutMs ?? 10_000;
    return newPool(this.base.origin, { connections: 1, connect: this.connectOptions(timeout), headersTimeout: timeout, bodyTimeout: timeout });
  }

  private connectOptions(timeout: number): { timeout: number; ca?: (string | Buffer)[]; servername?: string; cert?: Buffer; key?: Buffer } {
    const tls = this.base.protocol === 'https:' ? this.o.tls : undefined;
    if (tls === undefined) return { timeout };
    return { timeout, ca: tls.ca, servername: tls.servername, cert: tls.cert, key: tls.key };
  }

  start(): void {
    this.running ??= this.loop();
  }

  /** Stop following: the stream is closed, and the cursor written. */
  async close(): Promise<void> {
    this.closed = true;
    this.stream?.destroy().catch(() => undefined);
    this.wake?.();
    await this.running;
    await this.acks.close().catch(() => undefined);
    for (const w of this.caughtUpWaiters) w();
  }

  status(): PurgeStreamStatus {
    const applied = this.o.purger.cursor.seq;
    return {
      connected: this.connected,
      caughtUp: this.o.purger.isCaughtUp,
      appliedSeq: applied,
      headSeq: Math.max(this.headSeq, applied),
      lagSeconds: this.behindSince === undefined ? 0 : Math.max(0, (this.o.now() - this.behindSince) / 1000),
    };
  }

  /** Resolves once the node has caught up with the log (or the subscriber is closed). */
  caughtUp(): Promise<void> {
    if (this.o.purger.isCaughtUp || this.closed) return Promise.resolve();
    return new Promise((resolve) => this.caughtUpWaiters.add(resolve));
  }

  private async loop(): Promise<void> {
    while (!this.closed) {
      let end: AttemptEnd = { kind: 'failed' };
      try {
        await this.session();
      } catch (err) {
        const e = err instanceof SessionEnd ? err : new SessionEnd('failed', describe(err));
        if (e.reason !== 'closed') {
          this.o.metrics.failures.inc({ reason: e.reason });
          const level = e.reason === 'refused' || e.reason === 'protocol' || e.reason === 'apply' ? 'error' : 'warn';
          this.o.logger[level]({ reason: e.reason, err: e.message, cursor: this.o.purger.cursor }, 'purge stream ended; connecting again');
        }
        if (e.reason === 'silent') {
          // The path that went silent likely holds the acknowledgements' connection too: a new one,
          // so the next acknowledgement does not wait out that connection's timeout.
          const old = this.acks;
          this.acks = this.ackPool();
          old.destroy().catch(() => undefined);
        }
        end = e.end;
      } finally {
        this.connected = false;
        this.stream?.destroy().catch(() => undefined);
        this.stream = undefined;
      }
      if (this.closed) break;
      const delay = reconnectDelay(this.attempts, end, (this.o.random ?? Math.random)(), this.o.backoff ?? DEFAULT_BACKOFF);
      this.attempts += 1;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
      if (!this.closed) this.o.metrics.reconnects.inc();
    }
  }

  /** One connection, until it breaks, ends, falls silent or the subscriber closes. */
  private async session(): Promise<void> {
    const cursor = this.o.purger.cursor;
    const query = new URLSearchParams({ after: String(cursor.seq), node: this.o.node });
    if (cursor.log !== null) query.set('log', cursor.log);
    const timeout = this.o.connectTimeoutMs ?? 10_000;
    const client = newClient(this.base.origin, { connect: this.connectOptions(timeout), headersTimeout: timeout, bodyTimeout: 0, pipelining: 0 });
    this.stream = client;
    if (this.closed) throw new SessionEnd('closed', 'closed');
    const res = await poolRequest(client, {
      method: 'GET',
      path: `${this.base.pathname.replace(/\/$/, '')}/_cdn/purges?${query.toString()}`,
      headers: { authorization: `Bearer ${this.o.token}`, accept: 'text/event-stream' },
    });
    if (res.statusCode !== 200) {
      const text = await res.body.text().catch(() => '');
      throw new SessionEnd('refused', `the origin answered ${res.statusCode}: ${text.slice(0, 300)}`, { kind: 'refused', status: res.statusCode, retryAfterSec: retryAfterSeconds(res.headers['retry-after']) });
    }
    const parser = new SseParser();
    const session: { hello: HelloEvent | undefined } = { hello: undefined };
    let silence: NodeJS.Timeout | undefined;
    let silent = false;
    const watch = (): void => {
      clearTimeout(silence);
      const limit = session.hello === undefined ? (this.o.helloTimeoutMs ?? 10_000) : silenceLimit(session.hello.heartbeatMs);
      silence = setTimeout(() => {
        silent = true;
        client.destroy().catch(() => undefined);
      }, limit);
    };
    res.body.setEncoding('utf8');
    watch();
    try {
      for await (const chunk of res.body as AsyncIterable<string>) {
        // Applying may take a while: the silence clock runs only while waiting for the origin.
        clearTimeout(silence);
        await this.handle(parser.push(chunk), session);
        if (this.closed) throw new SessionEnd('closed', 'closed');
        watch();
      }
    } catch (err) {
      if (err instanceof SessionEnd) throw err;
      if (silent) throw new SessionEnd('silent', `nothing heard for ${silenceLimit(session.hello?.heartbeatMs ?? 0) || (this.o.helloTimeoutMs ?? 10_000)} ms: a half-open connection`);
      if (this.closed) throw new SessionEnd('closed', 'closed');
      throw new SessionEnd('failed', describe(err));
    } finally {
      clearTimeout(silence);
    }
    if (silent) throw new SessionEnd('silent', 'nothing heard for three heartbeats: a half-open connection');
    throw new SessionEnd(this.closed ? 'closed' : 'failed', 'the origin ended the stream');
  }

  /** Handle the events of one read, in order; consecutive purges are applied as one batch. */
  private async handle(events: ReturnType<SseParser['push']>, session: { hello: HelloEvent | undefined }): Promise<void> {
    let batch: PurgeEvent[] = [];
    for (const raw of events) {
      const event = readStreamEvent(raw.event, raw.data);
      if (event === undefined) continue;
      if (typeof event === 'string') throw new SessionEnd('protocol', event);
      if (event.kind === 'purge') {
        this.o.metrics.received.inc();
        batch.push(event);
        continue;
      }
      await this.applyBatch(batch, session);
      batch = [];
      await this.control(event, session);
    }
    await this.applyBatch(batch, session);
  }

  private async control(event: Exclude<StreamEvent, PurgeEvent>, session: { hello: HelloEvent | undefined }): Promise<void> {
    switch (event.kind) {
      case 'hello': {
        session.hello = event;
        this.connected = true;
        this.attempts = 0;
        this.o.metrics.connections.inc();
        this.noteHead(event.lastSeq);
        const { log, seq } = this.o.purger.cursor;
        this.o.logger.info({ log: event.log, firstSeq: event.firstSeq, lastSeq: event.lastSeq, cursor: { log, seq } }, 'purge stream open');
        // The origin resets a cursor it cannot resume (it says so next); otherwise purges follow from the cursor.
        const resumes = (log === null || log === event.log) && seq <= event.lastSeq && seq >= event.firstSeq - 1;
        if (resumes && log === null) this.o.purger.advance(event.log, seq); // the first log this cache follows
        if (resumes) this.checkCaughtUp(session);
        return;
      }
      case 'reset':
        if (session.hello === undefined) throw new SessionEnd('protocol', 'reset before hello');
        this.o.logger.warn({ reason: event.reason, log: event.log, firstSeq: event.firstSeq, cursor: this.o.purger.cursor }, 'purge stream reset: purges may have been missed, the whole cache counts as stale');
        await this.o.purger.reset(event.log, event.firstSeq);
        this.noteHead(event.lastSeq);
        this.checkCaughtUp(session);
        return;
      case 'heartbeat':
        this.noteHead(event.lastSeq);
        this.checkCaughtUp(session);
        this.acknowledge();
        return;
    }
  }

  private async applyBatch(batch: PurgeEvent[], session: { hello: HelloEvent | undefined }): Promise<void> {
    if (batch.length === 0) return;
    const hello = session.hello;
    if (hello === undefined) throw new SessionEnd('protocol', 'purge before hello');
    const purges: Purge[] = [];
    let last = this.o.purger.cursor.seq;
    for (const e of batch) {
      if (e.seq <= last) continue; // sent again after a reconnect: applied already
      if (e.seq !== last + 1) {
        // Purges between the two never came: nobody knows what they took.
        this.o.logger.error({ expected: last + 1, got: e.seq }, 'gap in the purge stream: the whole cache counts as stale');
        await this.flush(purges, hello.log, last);
        purges.length = 0;
        await this.o.purger.reset(hello.log, e.seq);
      }
      purges.push(e.purge);
      last = e.seq;
    }
    await this.flush(purges, hello.log, last);
    const now = this.o.now();
    for (const e of batch) this.o.metrics.delay.observe(Math.max(0, now - e.time) / 1000);
    this.noteHead(last);
    this.checkCaughtUp(session);
    this.acknowledge();
  }

  private async flush(purges: Purge[], log: string, seq: number): Promise<void> {
    if (purges.length === 0) return;
    try {
      await this.o.purger.apply(purges, 'stream');
    } catch (err) {
      throw new SessionEnd('apply', `applying purges up to ${seq} failed: ${describe(err)}`);
    }
    this.o.purger.advance(log, seq);
  }

  private noteHead(seq: number): void {
    this.headSeq = Math.max(this.headSeq, seq);
    const behind = this.headSeq > this.o.purger.cursor.seq;
    if (!behind) this.behindSince = undefined;
    else this.behindSince ??= this.o.now();
  }

  private checkCaughtUp(session: { hello: HelloEvent | undefined }): void {
    if (session.hello === undefined || this.o.purger.isCaughtUp) return;
    if (this.o.purger.cursor.seq < session.hello.lastSeq || this.o.purger.cursor.log !== session.hello.log) return;
    this.o.purger.markCaughtUp();
    this.o.logger.info({ seq: this.o.purger.cursor.seq }, 'caught up with the purge log');
    for (const w of this.caughtUpWaiters) w();
    this.caughtUpWaiters.clear();
  }

  /** Acknowledge the newest applied sequence number: one request at a time, the newest each time. */
  private acknowledge(): void {
    if (this.acking || this.closed) return;
    const seq = this.o.purger.cursor.seq;
    if (seq <= this.acked) return;
    this.acking = true;
    void this.sendAck(seq).finally(() => {
      this.acking = false;
      if (this.o.purger.cursor.seq > this.acked) this.acknowledge();
    });
  }

  private async sendAck(seq: number): Promise<void> {
    try {
      const res = await poolRequest(this.acks, {
        method: 'POST',
        path: `${this.base.pathname.replace(/\/$/, '')}/_cdn/purges/ack`,
        headers: { authorization: `Bearer ${this.o.token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ node: this.o.node, seq }),
      });
      const text = await res.body.text();
      if (res.statusCode === 200) this.acked = Math.max(this.acked, seq);
      else this.o.logger.warn({ status: res.statusCode, body: text.slice(0, 300), seq }, 'purge acknowledgement refused');
    } catch (err) {
      // The next purge or heartbeat tries again; reconnecting acknowledges the cursor too.
      if (!this.closed) this.o.logger.warn({ err: describe(err), seq }, 'purge acknowledgement failed');
    }
  }
}

function describe(err: unknown): string {
  if (err instanceof undiciErrors.UndiciError) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}
