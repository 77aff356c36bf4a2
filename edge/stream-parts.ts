/**
 * Small stream and promise helpers of the edge's pipeline: waiting with a deadline, draining a body
 * nobody reads, bounding a request body, and waiting for a stored body's first bytes.
 */
import { Readable, Transform } from 'node:stream';
import { clientError } from '../src/errors.js';
import type { FlightOutcome } from './flights.js';

/** The outcome, or undefined when it has not come within `ms`. */
export function withinDeadline<T>(outcome: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<undefined>((resolve) => (timer = setTimeout(resolve, ms, undefined)));
  return Promise.race([outcome, deadline]).finally(() => clearTimeout(timer));
}

/** A fetch whose leader stopped waiting: an answer that cannot be shared is read to its end, unused. */
export function releaseUnread(outcome: Promise<FlightOutcome>): void {
  outcome.then(
    (o) => {
      if (o.kind !== 'uncacheable') return;
      const res = o.take();
      if (res !== undefined) discard(res.body);
    },
    () => undefined,
  );
}

/** Read a body nobody wants to its end (so its connection is reused), ignoring its errors. */
export function discard(body: Readable): void {
  body.on('error', () => undefined).resume();
}

/** Fails the stream once more than `max` bytes went through. */
export function limitBytes(max: number): Transform {
  let seen = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb) {
      seen += chunk.length;
      cb(seen > max ? clientError('payload_too_large', `request body over ${max} bytes`, { status: 413 }) : null, chunk);
    },
  });
}

/**
 * Resolves with the stream once its first bytes (or its end) are ready, so a body that vanished
 * between lookup and open (`blob_gone`) fails before any header is sent and the lookup is retried.
 */
export function firstChunkReady(stream: Readable): Promise<Readable> {
  return new Promise((resolve, reject) => {
    const done = (err?: Error): void => {
      stream.off('readable', onReady);
      stream.off('end', onReady);
      stream.off('error', done);
      if (err === undefined) resolve(stream);
      else reject(err);
    };
    const onReady = (): void => done();
    stream.once('readable', onReady);
    stream.once('end', onReady);
    stream.once('error', done);
  });
}
