/**
 * A purge stream reader for tests: a real HTTP client (undici) on `GET /_cdn/purges` that parses
 * Server-Sent Events as they arrive, and a fake edge built on it that acknowledges what it reads.
 * `close()` ends the connection; every reader a test opens must be closed.
 */
import { request } from 'undici';

export const EDGE_TOKEN = 'edge-token-for-tests-0123456789ab';

export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
  /** `data` parsed as JSON. */
  json: Record<string, unknown>;
  /** Date.now() when it was read. */
  at: number;
}

export interface StreamReader {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** Every event read so far. */
  events: SseEvent[];
  /** Resolves with the first event (from the start) at index ≥ `from` for which `match` holds. */
  next(match?: (e: SseEvent) => boolean, timeoutMs?: number, from?: number): Promise<SseEvent>;
  /** Whether the server ended the stream. */
  ended: () => boolean;
  /** The body of a refused stream (JSON), or undefined. */
  refusal: Record<string, unknown> | undefined;
  close(): void;
}

/** `token` null: no Authorization at all. */
export async function openPurgeStream(origin: string, query: string, token: string | null = EDGE_TOKEN): Promise<StreamReader> {
  const controller = new AbortController();
  const res = await request(`${origin}/_cdn/purges?${query}`, {
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    signal: controller.signal,
  });
  const events: SseEvent[] = [];
  const wakers = new Set<() => void>();
  let ended = false;
  if (res.statusCode !== 200) {
    const refusal = (await res.body.json()) as Record<string, unknown>;
    return { status: res.statusCode, headers: res.headers, events, next: () => Promise.reject(new Error('refused')), ended: () => true, refusal, close: () => undefined };
  }
  let buffer = '';
  res.body.setEncoding('utf8');
  res.body.on('data', (chunk: string) => {
    buffer += chunk;
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const fields: Record<string, string> = {};
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        fields[line.slice(0, colon)] = line.slice(colon + 1).replace(/^ /, '');
      }
      if (fields['data'] === undefined) continue; // `retry:` alone
      events.push({ event: fields['event'] ?? 'message', id: fields['id'], data: fields['data'], json: JSON.parse(fields['data']) as Record<string, unknown>, at: Date.now() });
    }
    for (const w of wakers) w();
  });
  res.body.on('error', () => undefined);
  res.body.on('close', () => {
    ended = true;
    for (const w of wakers) w();
  });
  return {
    status: res.statusCode,
    headers: res.headers,
    events,
    refusal: undefined,
    ended: () => ended,
    next(match = () => true, timeoutMs = 5000, from = 0) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          const found = events.slice(from).find(match);
          if (found !== undefined) {
            done();
            resolve(found);
          } else if (ended) {
            done();
            reject(new Error(`stream ended without the event; had ${JSON.stringify(events.map((e) => e.event))}`));
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`no such event within ${timeoutMs} ms; had ${JSON.stringify(events.map((e) => e.event))}`));
        }, timeoutMs);
        const done = (): void => {
          clearTimeout(timer);
          wakers.delete(check);
        };
        wakers.add(check);
        check();
      });
    },
    close() {
      controller.abort();
    },
  };
}

/** `POST /_cdn/purges/ack`. */
export async function ack(origin: string, node: string, seq: unknown, token = EDGE_TOKEN): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await request(`${origin}/_cdn/purges/ack`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ node, seq }),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown> };
}

/**
 * A fake edge: holds a purge stream open and, when `acking`, acknowledges each purge as it reads
 * it. Its `acked` is the last sequence number it acknowledged.
 */
export interface FakeEdge {
  stream: StreamReader;
  acked: number;
  close(): void;
}

export async function startFakeEdge(origin: string, node: string, options: { after?: number; acking?: boolean } = {}): Promise<FakeEdge> {
  const stream = await openPurgeStream(origin, `after=${options.after ?? 0}&node=${encodeURIComponent(node)}`);
  if (stream.status !== 200) throw new Error(`stream refused: ${stream.status} ${JSON.stringify(stream.refusal)}`);
  await stream.next((e) => e.event === 'hello');
  const edge: FakeEdge = { stream, acked: options.after ?? 0, close: () => stream.close() };
  if (options.acking ?? true) {
    let index = 0;
    const loop = async (): Promise<void> => {
      for (;;) {
        const e = await stream.next((x) => x.event === 'purge', 60_000, index).catch(() => undefined);
        if (e === undefined) return;
        index = stream.events.indexOf(e) + 1;
        const seq = Number(e.json['seq']);
        await ack(origin, node, seq).catch(() => undefined);
        edge.acked = seq;
      }
    };
    void loop();
  }
  return edge;
}

/** `POST /_cdn/purge`. */
export async function postPurge(origin: string, token: string, body: unknown, query = ''): Promise<{ status: number; json: Record<string, unknown>; headers: Record<string, string | string[] | undefined> }> {
  const res = await request(`${origin}/_cdn/purge${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  return { status: res.statusCode, json: (await res.body.json()) as Record<string, unknown>, headers: res.headers };
}
