/**
 * The purge API (Bearer purge token) and the edges' acknowledgements (Bearer edge token):
 *
 * - `POST /_cdn/purge[?wait=SECONDS]` validates the purge (src/purge/purge-request.ts), appends it
 *   to the log (durable before the answer) and answers its id and sequence number, with which live
 *   edges have applied it: `200` when all have (or none is live), `202` while some have not. With
 *   `wait` it answers when every live edge has applied it, or at the deadline listing those that
 *   have not (`pending`).
 * - `GET /_cdn/purge/{id}`: the purge and which edges applied it, and when.
 * - `POST /_cdn/purges/ack` `{"node":"POP/NODE","seq":N}`: the edge applied every purge up to N.
 *
 * The stream itself (`GET /_cdn/purges`) is origin/purge/purge-stream.ts.
 */
import type { Context, Hono } from 'hono';
import { requireBearer } from '../../src/auth.js';
import { clientError, isCdnError } from '../../src/errors.js';
import { parsePurgeBody } from '../../src/purge/purge-request.js';
import type { OriginDeps, OriginEnv } from '../app.js';
import { EDGE_NAME, type AppliedView, type WaitResult } from '../purge/edge-registry.js';
import type { PurgeEntry } from '../purge/purge-log-format.js';

/** Largest purge request body: 1000 URLs of 1 KB fit. */
export const MAX_PURGE_BODY_BYTES = 1024 * 1024;
const MAX_ACK_BODY_BYTES = 1024;

export function registerPurgeRoutes(app: Hono<OriginEnv>, deps: OriginDeps): void {
  const { config, purges } = deps;

  app.post('/_cdn/purge', async (c) => {
    c.set('outcome', 'purge');
    requireBearer(c.req.header('authorization'), config.purgeToken, 'purge');
    const waitMs = waitOf(c.req.query('wait'), config.purge.maxWait);
    const purge = parsePurgeBody(await readBody(c, MAX_PURGE_BODY_BYTES), { maxEntries: config.purge.maxEntries });
    const entry = await purges.log.append(purge, 'api');
    const result = await purges.edges.waitApplied(entry.seq, waitMs);
    return c.json(purgeAnswer(entry, result), result.complete ? 200 : 202);
  });

  app.get('/_cdn/purge/:id', (c) => {
    c.set('outcome', 'purge');
    requireBearer(c.req.header('authorization'), config.purgeToken, 'purge');
    const id = c.req.param('id');
    const m = /^([0-9a-f]{12})-(\d{1,15})$/.exec(id);
    const seq = Number(m?.[2]);
    if (m === null || m[1] !== purges.log.id || seq < 1 || seq > purges.log.lastSeq) {
      return c.json({ error: 'not_found', message: `no purge ${JSON.stringify(id.slice(0, 64))} in this origin's log (${purges.log.id})` }, 404);
    }
    const entry = purges.log.get(seq);
    const edges = purges.edges.applied(seq);
    return c.json({
      id,
      seq,
      // Compacted away: which edges applied it is still known, what it purged no longer.
      time: entry === undefined ? null : new Date(entry.time).toISOString(),
      source: entry?.source ?? null,
      purge: entry === undefined ? null : purgeOf(entry),
      ...appliedSummary(edges),
    });
  });

  app.post('/_cdn/purges/ack', async (c) => {
    c.set('outcome', 'purge-ack');
    if (config.edgeToken === undefined) return c.json({ error: 'not_found', message: 'the purge stream is off: the origin has no edgeToken configured' }, 404);
    requireBearer(c.req.header('authorization'), config.edgeToken, 'edge');
    const text = await readBody(c, MAX_ACK_BODY_BYTES);
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      throw clientError('invalid_json', 'the body is not valid JSON; expected {"node":"POP/NODE","seq":N}', { field: 'body' });
    }
    const { node, seq } = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
    if (typeof node !== 'string' || !EDGE_NAME.test(node)) {
      throw clientError('invalid_ack', `node must be POP/NODE (letters, digits, _ and -; the node also .), got ${JSON.stringify(node ?? null)?.slice(0, 100)}`, { field: 'node' });
    }
    const last = purges.log.lastSeq;
    if (!Number.isSafeInteger(seq) || (seq as number) < 0 || (seq as number) > last) {
      throw clientError('invalid_ack', `seq must be a sequence number from 0 to the last purge, ${last}, got ${JSON.stringify(seq ?? null)?.slice(0, 40)}`, { field: 'seq' });
    }
    const edge = purges.edges.ack(node, seq as number);
    return c.json({ node, acked: edge.acked, lastSeq: last });
  });

  app.all('/_cdn/purge', (c) => methodNotAllowed(c, 'POST'));
  app.all('/_cdn/purge/*', (c) => methodNotAllowed(c, 'GET'));
  app.all('/_cdn/purges/ack', (c) => methodNotAllowed(c, 'POST'));
  app.all('/_cdn/purges', (c) => methodNotAllowed(c, 'GET'));
}

function methodNotAllowed(c: Context<OriginEnv>, allow: string): Response {
  c.set('outcome', 'error');
  return c.json({ error: 'method_not_allowed', message: `${c.req.method} is not allowed here; allowed: ${allow}` }, 405, { allow });
}

/** `?wait=SECONDS`: absent is 0; a number of seconds up to the configured maximum. */
export function waitOf(value: string | undefined, maxWaitMs: number): number {
  if (value === undefined) return 0;
  const ms = /^\d{1,6}(\.\d{1,3})?$/.test(value) ? Math.round(Number(value) * 1000) : NaN;
  if (!(ms <= maxWaitMs)) {
    throw clientError('invalid_param', `wait must be a number of seconds from 0 to ${maxWaitMs / 1000}, got ${JSON.stringify(value.slice(0, 40))}`, { field: 'wait' });
  }
  return ms;
}

function purgeAnswer(entry: PurgeEntry, result: WaitResult): Record<string, unknown> {
  return { id: entry.id, seq: entry.seq, ...appliedSummary(result.edges) };
}

/** `complete`, every known edge with whether and when it applied the purge, and the live ones still to. */
function appliedSummary(edges: AppliedView[]): Record<string, unknown> {
  const pending = edges.filter((e) => e.live && !e.applied).map((e) => e.node);
  return {
    complete: pending.length === 0,
    edges: edges.map((e) => ({ node: e.node, live: e.live, applied: e.applied, at: e.at === undefined ? null : new Date(e.at).toISOString() })),
    pending,
  };
}

function purgeOf(entry: PurgeEntry): Record<string, unknown> {
  return { urls: entry.urls, prefixes: entry.prefixes, tags: entry.tags, all: entry.all, soft: entry.soft };
}

/** The request body as text, refused with 413 past `maxBytes` (declared or read). */
async function readBody(c: Context<OriginEnv>, maxBytes: number): Promise<string> {
  const tooLarge = (): Error => clientError('payload_too_large', `the body is larger than ${maxBytes} bytes`, { status: 413, field: 'body' });
  const declared = c.req.header('content-length');
  if (declared !== undefined && Number(declared) > maxBytes) throw tooLarge();
  // Node's request itself when there is one: a web stream made of it costs more than the purge.
  const incoming = (c.env as { incoming?: AsyncIterable<Uint8Array> } | undefined)?.incoming;
  const body = incoming ?? c.req.raw.body;
  if (body === null) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      if (size > maxBytes) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (err) {
    if (isCdnError(err)) throw err;
    throw clientError('body_read_failed', 'the request body could not be read', { field: 'body', cause: err });
  }
  return Buffer.concat(chunks).toString('utf8');
}
