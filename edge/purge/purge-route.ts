/**
 * `POST /_cdn/purge` on an edge (Bearer `adminToken`): the purge API's JSON
 * (`{"urls":[],"prefixes":[],"tags":[],"all":false,"soft":false}`, src/purge/purge-request.ts)
 * applied on this node alone, every process of it, for an operator; nothing is logged at the
 * origin and no other edge hears of it. Answers what it took:
 * `{"node":"pop/node","removed":N,"markedStale":M}` (an `all` counts what the sweep removes).
 *
 * 404 (for every method) when the edge has no adminToken, 405 for another method than POST, 401
 * without a token, 403 with a wrong one, 400 naming what is wrong with the body, 413 past 1 MiB.
 */
import type { IncomingMessage } from 'node:http';
import { requireBearer } from '../../src/auth.js';
import { clientError, httpErrorOf, isCdnError } from '../../src/errors.js';
import { parsePurgeBody, type Purge } from '../../src/purge/purge-request.js';
import { jsonReply, type Reply } from '../../src/serve/reply.js';
import type { PurgeCount } from './purge-apply.js';

export const LOCAL_PURGE_PATH = '/_cdn/purge';
/** Largest body: the origin's limit. */
export const MAX_LOCAL_PURGE_BYTES = 1024 * 1024;

export interface LocalPurgeDeps {
  adminToken: string | undefined;
  maxEntries: number;
  servedBy: string;
  /** Apply on every process of this node. */
  apply(purge: Purge): Promise<PurgeCount>;
}

export async function localPurgeReply(req: IncomingMessage, deps: LocalPurgeDeps): Promise<Reply> {
  const headers = { 'x-served-by': deps.servedBy, 'cache-control': 'no-store' };
  try {
    // Off, the endpoint is not there at all, whatever the method.
    if (deps.adminToken === undefined) {
      return jsonReply(404, { error: 'not_found', message: 'the edge-local purge is off: this edge has no adminToken configured' }, headers);
    }
    if (req.method !== 'POST') {
      return jsonReply(405, { error: 'method_not_allowed', message: `${req.method ?? '?'} is not allowed here; allowed: POST` }, { ...headers, allow: 'POST' });
    }
    requireBearer(req.headers.authorization, deps.adminToken, 'admin');
    const purge = parsePurgeBody(await readBody(req), { maxEntries: deps.maxEntries });
    const count = await deps.apply(purge);
    return jsonReply(200, { node: deps.servedBy, removed: count.removed, markedStale: count.marked }, headers);
  } catch (err) {
    const e = httpErrorOf(err);
    const extra: Record<string, string> = { ...headers };
    for (const [k, v] of Object.entries(e.headers)) extra[k.toLowerCase()] = v;
    return jsonReply(e.status, e.body, extra);
  }
}

async function readBody(req: IncomingMessage): Promise<string> {
  const tooLarge = () => clientError('payload_too_large', `the body is larger than ${MAX_LOCAL_PURGE_BYTES} bytes`, { status: 413, field: 'body' });
  if (Number(req.headers['content-length'] ?? 0) > MAX_LOCAL_PURGE_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > MAX_LOCAL_PURGE_BYTES) throw tooLarge();
      chunks.push(chunk);
    }
  } catch (err) {
    if (isCdnError(err)) throw err;
    throw clientError('body_read_failed', 'the request body could not be read', { field: 'body', cause: err });
  }
  return Buffer.concat(chunks).toString('utf8');
}
