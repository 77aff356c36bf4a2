/**
 * The lab's client: runs inside a client network's namespace and sends GET requests to the
 * anycast address at a steady rate, printing one JSON line per attempt:
 *
 *   {"seq":12,"attempt":1,"start":1733500000123.45,"end":1733500000125.01,"status":200,"by":"pop1/edge1","reused":false}
 *   {"seq":13,"attempt":1,"start":…,"end":…,"error":"ECONNRESET","reused":true,"connected":true}
 *
 * (`"close":true` when the answer said `Connection: close`.)
 *
 * `start` and `end` are milliseconds on the machine's clock (performance.timeOrigin + now), so a
 * test in another process can line them up with what it did. An attempt succeeds when it gets a
 * 200 with its whole body; anything else (an error, another status, no answer within `--timeout`)
 * is a failure.
 *
 * - Connection per request (default): a new connection for every request, one every
 *   `--interval` ms whether or not the previous one has answered (at most 256 in flight).
 * - `--keep-alive`: one persistent connection, one request at a time, the next `--interval` ms
 *   after the last answer; a `Connection: close` answer makes the next request open a new one.
 * - `--retry`: a failed attempt is retried once at once, on a new connection (what browsers do
 *   for an idempotent request whose connection failed).
 *
 * Stops on SIGTERM/SIGINT, after `--count` requests or `--duration` ms, or with
 * `--stop-with-stdin` at the end of its standard input (how the lab stops it, so a client whose
 * starter died stops too); in-flight requests are waited for (bounded by the timeout).
 *
 *   ip netns exec anycdn-lab-ID-c1 node dist/deploy/lab/client.js --url http://198.51.100.1/lab.txt --count 5
 */
import { Agent, request, type IncomingMessage } from 'node:http';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { succeeded, type ClientRecord } from './measure.js';

const MAX_IN_FLIGHT = 256;

const clock = (): number => Math.round((performance.timeOrigin + performance.now()) * 100) / 100;

interface Options {
  url: string;
  interval: number;
  timeout: number;
  keepAlive: boolean;
  retry: boolean;
  count: number;
  duration: number;
  watchStdin: boolean;
}

function attempt(options: Options, agent: Agent | false, seq: number, n: 1 | 2): Promise<ClientRecord> {
  return new Promise((resolve) => {
    const start = clock();
    let settled = false;
    let reused = false;
    let connected = false;
    const finish = (fields: Partial<ClientRecord>): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      // A failure says whether the connection was ever made (a SYN lost or unanswered: false).
      resolve({ seq, attempt: n, start, end: clock(), reused, ...fields, ...(fields.error === undefined ? {} : { connected }) });
    };
    const req = request(options.url, { agent, headers: agent === false ? { connection: 'close' } : {} }, (res: IncomingMessage) => {
      const by = res.headers['x-served-by'];
      const expected = Number(res.headers['content-length'] ?? NaN);
      let bytes = 0;
      res.on('data', (chunk: Buffer) => (bytes += chunk.length));
      res.on('end', () => {
        const whole = Number.isNaN(expected) || bytes === expected;
        const close = /(^|,)\s*close\s*(,|$)/i.test(res.headers.connection ?? '');
        finish({ status: res.statusCode, by: typeof by === 'string' ? by : undefined, ...(close ? { close } : {}), ...(whole ? {} : { error: `body ${bytes} of ${expected} bytes` }) });
      });
      res.on('error', (err: NodeJS.ErrnoException) => finish({ status: res.statusCode, error: err.code ?? err.message }));
      res.on('aborted', () => finish({ status: res.statusCode, error: 'aborted' }));
    });
    req.on('socket', (socket) => {
      reused = req.reusedSocket;
      if (reused || !socket.connecting) connected = true;
      else socket.once('connect', () => (connected = true));
    });
    req.on('error', (err: NodeJS.ErrnoException) => finish({ error: err.code ?? err.message }));
    const timer = setTimeout(() => {
      finish({ error: 'timeout' });
      req.destroy();
    }, options.timeout);
    req.end();
  });
}

async function requestOnce(options: Options, agent: Agent | false, seq: number): Promise<void> {
  const first = await attempt(options, agent, seq, 1);
  emit(first);
  if (options.retry && !succeeded(first)) emit(await attempt(options, false, seq, 2));
}

function emit(record: ClientRecord): void {
  process.stdout.write(JSON.stringify(record) + '\n');
}

async function run(options: Options): Promise<void> {
  let stopping = false;
  const stop = (): void => {
    stopping = true;
    wake?.();
  };
  let wake: (() => void) | undefined;
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, ms));
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (options.watchStdin) process.stdin.on('end', stop).on('error', stop).resume();
  const until = options.duration > 0 ? clock() + options.duration : Infinity;
  const inFlight = new Set<Promise<void>>();
  const agent = options.keepAlive ? new Agent({ keepAlive: true, maxSockets: 1 }) : false;
  let next = clock();
  for (let seq = 1; !stopping && seq <= options.count && clock() < until; seq++) {
    if (options.keepAlive) {
      await requestOnce(options, agent, seq);
      next = Math.max(next + options.interval, clock());
    } else if (inFlight.size < MAX_IN_FLIGHT) {
      const p: Promise<void> = requestOnce(options, agent, seq).finally(() => inFlight.delete(p));
      inFlight.add(p);
      next += options.interval;
    } else {
      next += options.interval;
    }
    await sleep(next - clock());
  }
  await Promise.all(inFlight);
  if (agent !== false) agent.destroy();
  if (options.watchStdin) process.stdin.pause();
}

function number(value: string | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name}: expected a non-negative number, got ${JSON.stringify(value)}`);
  return n;
}

function main(): void {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      interval: { type: 'string' },
      timeout: { type: 'string' },
      'keep-alive': { type: 'boolean' },
      retry: { type: 'boolean' },
      count: { type: 'string' },
      duration: { type: 'string' },
      'stop-with-stdin': { type: 'boolean' },
    },
    strict: true,
  });
  if (values.url === undefined) throw new Error('--url is required');
  const options: Options = {
    url: values.url,
    interval: Math.max(1, number(values.interval, 20, 'interval')),
    timeout: Math.max(1, number(values.timeout, 2000, 'timeout')),
    keepAlive: values['keep-alive'] ?? false,
    retry: values.retry ?? false,
    count: number(values.count, Infinity, 'count'),
    duration: number(values.duration, 0, 'duration'),
    watchStdin: values['stop-with-stdin'] ?? false,
  };
  run(options).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`client: ${(err as Error).message}\n`);
      process.exit(1);
    },
  );
}

try {
  main();
} catch (err) {
  process.stderr.write(`client: ${(err as Error).message}\n`);
  process.exit(2);
}
