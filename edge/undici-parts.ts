/**
 * The parts of undici the edge uses, loaded from their own modules: the connection pool, the
 * single connection (the purge stream's), their `request` method and the error classes. undici's index loads every part it has (fetch,
 * WebSocket, EventSource, the HTTP cache, mocks, …) and then adds the request methods to every
 * dispatcher: on the 2-core reference machine 186 ms of CPU against 84 ms for these parts, and
 * with `workers: N` every process of the node pays it before it can answer. These are module
 * paths inside the package, so test/unit/edge/undici-parts.test.ts checks they are the very
 * objects the index exports (an undici that moves them fails there, not at a start).
 */
import { createRequire } from 'node:module';
import type { Client as UndiciClient, Dispatcher, Pool as UndiciPool, errors as undiciErrorsType } from 'undici';

const require = createRequire(import.meta.url);

export const Pool = require('undici/lib/dispatcher/pool.js') as typeof UndiciPool;
export type Pool = UndiciPool;
export const Client = require('undici/lib/dispatcher/client.js') as typeof UndiciClient;
export type Client = UndiciClient;
export const undiciErrors = require('undici/lib/core/errors.js') as typeof undiciErrorsType;

const apiRequest = (require('undici/lib/api/index.js') as { request: Dispatcher['request'] }).request;

/** `pool.request(options)` (or a client's), without undici's index having added `request` to every dispatcher. */
export function poolRequest(pool: UndiciPool | UndiciClient, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return apiRequest.call(pool, options) as Promise<Dispatcher.ResponseData>;
}

/** For the test: the request method as this module calls it. */
export const requestMethod: unknown = apiRequest;
