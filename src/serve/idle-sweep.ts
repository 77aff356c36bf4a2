/**
 * Idle deadlines for many connections, kept by one timer: every `periodMs`, each watched socket
 * that has neither read a byte (`bytesRead`) nor started or finished a write (`bytesWritten`,
 * `writableLength`) since the last look is idle for that much longer, and one idle past its limit
 * is handed to `onIdle`.
 *
 * Why not `socket.setTimeout`: Node restarts a socket's timer on every read and every write
 * (`_unrefTimer`: a call into libuv for the time and a move within the timer list), twice per
 * request on a keep-alive connection (timer list work showed in perf profiles of 50 KiB disk hits
 * under `wrk -c64`, ~0.5% of samples). Here a request costs nothing; a deadline is met between
 * `limit` and `limit + periodMs`, as with Node's own timers (which are late when the loop is
 * busy) but coarser.
 *
 * Progress is what Node's socket timeout counts: a read, or a write completing. A write the client
 * takes slowly counts once it has gone whole, with either.
 */
import type { Socket } from 'node:net';

interface Watched {
  /** Idle past this many ms: onIdle. */
  limitMs: number;
  /** When the socket was last seen to make progress. */
  since: number;
  bytesRead: number;
  bytesWritten: number;
  writableLength: number;
}

export class IdleSweep {
  private readonly watched = new Map<Socket, Watched>();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly periodMs: number,
    private readonly onIdle: (socket: Socket) => void,
    private readonly now: () => number = Date.now,
  ) {
    if (!(periodMs > 0)) throw new RangeError(`periodMs must be positive, got ${periodMs}`);
  }

  /** Watches `socket` with an idle limit of `limitMs`, counted from now (again, if it was watched). */
  watch(socket: Socket, limitMs: number): void {
    this.watched.set(socket, { limitMs, since: this.now(), bytesRead: socket.bytesRead, bytesWritten: socket.bytesWritten, writableLength: socket.writableLength });
    // Unref'd: a watched connection keeps the process alive by itself, not by this timer.
    this.timer ??= setInterval(() => this.sweep(), this.periodMs).unref();
  }

  unwatch(socket: Socket): void {
    if (!this.watched.delete(socket) || this.watched.size > 0) return;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  get size(): number {
    return this.watched.size;
  }

  /** One look at every watched socket (the timer's work; public for tests). */
  sweep(): void {
    const now = this.now();
    for (const [socket, w] of this.watched) {
      const bytesRead = socket.bytesRead;
      // Counts bytes when their write is dispatched: queued answers go out one after another.
      const bytesWritten = socket.bytesWritten;
      const writableLength = socket.writableLength;
      if (bytesRead !== w.bytesRead || bytesWritten !== w.bytesWritten || writableLength !== w.writableLength) {
        w.bytesRead = bytesRead;
        w.bytesWritten = bytesWritten;
        w.writableLength = writableLength;
        w.since = now;
      } else if (now - w.since >= w.limitMs) {
        this.unwatch(socket);
        this.onIdle(socket);
      }
    }
  }
}
