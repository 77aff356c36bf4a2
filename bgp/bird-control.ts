/**
 * A client of BIRD's control socket (`bird -s PATH`): one connection, opened when first needed
 * and again after any failure, one command at a time, every wait bounded by `timeoutMs`. No
 * `birdc` process is involved. Failures are CdnErrors with source `upstream`:
 * `bird_unreachable` (no socket, refused, closed), `bird_timeout`, `bird_protocol` (not BIRD's
 * line protocol). A reply with an error code is returned, not thrown: the caller decides.
 */
import { createConnection, type Socket } from 'node:net';
import { CdnError } from '../src/errors.js';
import { BirdProtocolError, BirdReplyReader, type BirdReply } from './bird-reply.js';

export interface BirdControlOptions {
  /** Longest wait to connect and read the greeting, and for one command's whole reply. */
  timeoutMs: number;
}

interface Pending {
  resolve(reply: BirdReply): void;
  reject(err: Error): void;
}

export class BirdControl {
  private socket: Socket | undefined;
  private reader = new BirdReplyReader();
  private pending: Pending | undefined;
  private queue: Promise<unknown> = Promise.resolve();
  /** Connections made so far: a new number means BIRD was (re)connected since the last look. */
  connections = 0;
  /** The greeting of the current connection (`BIRD 2.0.12 ready.`). */
  greeting: string | undefined;

  constructor(
    readonly path: string,
    private readonly options: BirdControlOptions,
  ) {}

  /** Send one command (one line) and read its whole reply. Commands run one after another. */
  command(command: string): Promise<BirdReply> {
    if (/[\r\n]/.test(command)) return Promise.reject(new Error('a BIRD command is one line'));
    const run = this.queue.then(() => this.run(command));
    this.queue = run.catch(() => undefined);
    return run;
  }

  close(): void {
    this.drop(new CdnError('bird_unreachable', 'upstream', `BIRD control socket ${this.path}: closed by the agent`));
  }

  private async run(command: string): Promise<BirdReply> {
    if (this.socket === undefined) await this.connect();
    const reply = this.next(`"${command}"`);
    this.socket!.write(`${command}\n`);
    return reply;
  }

  private async connect(): Promise<void> {
    this.reader = new BirdReplyReader();
    const socket = createConnection({ path: this.path });
    socket.setEncoding('utf8');
    this.socket = socket;
    // Events of a connection already dropped must not touch the next one.
    socket.on('data', (text: string) => {
      if (this.socket === socket) this.onData(text);
    });
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (this.socket === socket) this.drop(new CdnError('bird_unreachable', 'upstream', `BIRD control socket ${this.path}: ${err.code ?? err.message}`, { cause: err }));
    });
    socket.on('close', () => {
      if (this.socket === socket) this.drop(new CdnError('bird_unreachable', 'upstream', `BIRD control socket ${this.path}: connection closed`));
    });
    const greeting = await this.next('the greeting');
    if (greeting.code !== 1) {
      this.drop(new CdnError('bird_protocol', 'upstream', `BIRD control socket ${this.path}: unexpected greeting ${greeting.code} ${greeting.lines[0]?.text ?? ''}`));
      throw new CdnError('bird_protocol', 'upstream', `BIRD control socket ${this.path}: unexpected greeting ${greeting.code}`);
    }
    this.greeting = greeting.lines[0]?.text;
    this.connections++;
  }

  /** The next reply on the current connection, within the timeout. */
  private next(what: string): Promise<BirdReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.drop(new CdnError('bird_timeout', 'upstream', `BIRD control socket ${this.path}: no answer to ${what} within ${this.options.timeoutMs} ms`));
      }, this.options.timeoutMs);
      this.pending = {
        resolve: (reply) => {
          clearTimeout(timer);
          resolve(reply);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
    });
  }

  private onData(text: string): void {
    let replies: BirdReply[];
    try {
      replies = this.reader.push(text);
    } catch (err) {
      const message = err instanceof BirdProtocolError ? err.message : String(err);
      this.drop(new CdnError('bird_protocol', 'upstream', `BIRD control socket ${this.path}: ${message}`));
      return;
    }
    for (const reply of replies) {
      const pending = this.pending;
      if (pending === undefined) {
        // BIRD speaks only when asked; anything else means we no longer know where we are.
        this.drop(new CdnError('bird_protocol', 'upstream', `BIRD control socket ${this.path}: a reply nobody asked for (${reply.code})`));
        return;
      }
      this.pending = undefined;
      pending.resolve(reply);
    }
  }

  /** Forget the connection; whoever waits gets `err`. The next command reconnects. */
  private drop(err: CdnError): void {
    const socket = this.socket;
    this.socket = undefined;
    this.greeting = undefined;
    socket?.destroy();
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
  }
}
