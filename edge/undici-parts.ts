/**
 * The parts of undici the edge uses, loaded from their own modules: the connection pool, the
 * single connection (the purge stream's), their `request` method and the error classes. undici's index loads every part it has (fetch,
 * WebSocket, EventSource, the HTTP cache, mocks, …) and then adds the request methods to every
 * dispatcher: on the 2-core reference machine 186 ms of CPU against 84 ms for these parts, and
 * with `workers: N` every process of the node pays it before it can answer. These are module
 * paths inside the package, so test/unit/edge/undici-parts.test.ts checks they are the very
 * objects the index exports (an undici that moves them fails there, not at a start).
 *
 * The pool, the client and the request method (their connection code and HTTP parser: 60-75 ms
 * of the CPU) are loaded at the first pool or client made, not at start: a process that goes
 * upstream only on a miss (a cluster worker, one process) answers from its cache sooner. The
 * error classes (3 ms), which every response's error handling checks against, are loaded at once.
 */
import { createRequire } from 'node:module';
import type { Client as UndiciClient, Dispatcher, Pool as UndiciPool, errors as undiciErrorsType } from 'undici';

const require = createRequire(import.meta.url);

export type Pool = UndiciPool;
export type Client = UndiciClient;
export const undiciErrors = require('undici/lib/core/errors.js') as typeof undiciErrorsType;

/** What newPool, newClient and poolRequest use: loaded at the first call of any of them. */
export interface ClientParts {
  Pool: typeof UndiciPool;
  Client: typeof UndiciClient;
  /** The request method undici's index adds to every dispatcher. */
  requestMethod: Dispatcher['request'];
}

let parts: ClientParts | undefined;

export function clientParts(): ClientParts {
  return (parts ??= {
    Pool: require('undici/lib/dispatcher/pool.js') as typeof UndiciPool,
    Client: require('undici/lib/dispatcher/client.js') as typeof UndiciClient,
    requestMethod: (require('undici/lib/api/index.js') as { request: Dispatcher['request'] }).request,
  });
}

export function newPool(origin: string, options: UndiciPool.Options): Pool {
  return new (clientParts().Pool)(origin, options);
}

export function newClient(origin: string, options: UndiciClient.Options): Client {
  return new (clientParts().Client)(origin, options);
}

/** `pool.request(options)` (or a client's), without undici's index having added `request` to every dispatcher. */
export function poolRequest(pool: UndiciPool | UndiciClient, options: Dispatcher.RequestOptions): Promise<Dispatcher.ResponseData> {
  return clientParts().requestMethod.call(pool, options) as Promise<Dispatcher.ResponseData>;
}
