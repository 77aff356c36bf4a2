/**
 * `anycdn purge (--url U | --prefix P | --tag T | --all) [--soft] [--wait N]`: the publisher's
 * client for `POST /_cdn/purge`. Prints the purge id and sequence number and, per edge, whether
 * it applied the purge; with `--wait N` the origin answers once every live edge has (or after N
 * seconds), and the command fails (exit 1) when some have not.
 */
import { request } from 'undici';
import { parseFlags, UsageError, type Command, type CommandIo } from './args.js';

const USAGE = `Usage: anycdn purge (--url U | --prefix P | --tag T | --all) [--soft] [--wait N]

Removes cached copies at every edge: a URL (a path such as /photos/cat.jpg, on every host, or
https://host/path, that host only; every query of it too), everything under a prefix, everything
tagged with a tag (Surrogate-Key or Cache-Groups), or everything.

Options:
  --url U          a URL to purge; repeatable
  --prefix P       a path prefix to purge (/photos/); repeatable
  --tag T          a tag to purge; repeatable
  --all            purge every cache entirely
  --soft           mark what matches stale (revalidated before it is served again) instead of removing it
  --wait N         wait up to N seconds for every live edge to apply it; exit 1 if some have not
  --origin URL     origin base URL (default $ANYCDN_ORIGIN or http://127.0.0.1:8081)
  --token TOKEN    purge token (default $ANYCDN_PURGE_TOKEN)
  -h, --help       show this help`;

interface EdgeState {
  node: string;
  live: boolean;
  applied: boolean;
  at: string | null;
}

interface PurgeAnswer {
  id: string;
  seq: number;
  complete: boolean;
  edges: EdgeState[];
  pending: string[];
}

export const runPurge: Command = async (args, io) => {
  const { values, positionals } = parseFlags(
    args,
    {
      url: { type: 'string', multiple: true },
      prefix: { type: 'string', multiple: true },
      tag: { type: 'string', multiple: true },
      all: { type: 'boolean' },
      soft: { type: 'boolean' },
      wait: { type: 'string' },
      origin: { type: 'string' },
      token: { type: 'string' },
    },
    USAGE,
  );
  if (values.help) {
    io.stdout.write(USAGE + '\n');
    return 0;
  }
  if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}: give what to purge with --url, --prefix, --tag or --all\n\n${USAGE}`);
  const body = { urls: values.url ?? [], prefixes: values.prefix ?? [], tags: values.tag ?? [], all: values.all === true, soft: values.soft === true };
  if (body.urls.length + body.prefixes.length + body.tags.length === 0 && !body.all) {
    throw new UsageError(`nothing to purge: give --url, --prefix, --tag or --all\n\n${USAGE}`);
  }
  if (values.wait !== undefined && !/^\d+(\.\d+)?$/.test(values.wait)) throw new UsageError('--wait must be a number of seconds');
  const origin = (values.origin ?? io.env['ANYCDN_ORIGIN'] ?? 'http://127.0.0.1:8081').replace(/\/+$/, '');
  const token = values.token ?? io.env['ANYCDN_PURGE_TOKEN'];
  if (token === undefined || token === '') throw new UsageError('a purge token is needed: --token or $ANYCDN_PURGE_TOKEN');

  const query = values.wait === undefined ? '' : `?wait=${values.wait}`;
  const res = await request(`${origin}/_cdn/purge${query}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await res.body.text();
  if (res.statusCode !== 200 && res.statusCode !== 202) {
    io.stderr.write(`anycdn purge: HTTP ${res.statusCode}: ${messageOf(text)}\n`);
    return 1;
  }
  const answer = JSON.parse(text) as PurgeAnswer;
  report(io, answer, values.wait !== undefined);
  return values.wait !== undefined && !answer.complete ? 1 : 0;
};

/** The purge and a line per edge: applied (when), pending, or offline. */
function report(io: CommandIo, answer: PurgeAnswer, waited: boolean): void {
  const live = answer.edges.filter((e) => e.live);
  const applied = live.filter((e) => e.applied).length;
  let summary: string;
  if (live.length === 0) summary = 'logged; no edge is live (each applies it when it connects)';
  else if (answer.complete) summary = `applied by all ${live.length} live edge${live.length === 1 ? '' : 's'}`;
  else summary = `applied by ${applied} of ${live.length} live edges${waited ? '' : ' so far (--wait N waits for them)'}`;
  io.stdout.write(`purge ${answer.id} (seq ${answer.seq}): ${summary}\n`);
  const width = Math.max(0, ...answer.edges.map((e) => e.node.length));
  for (const e of answer.edges) {
    const state = e.applied ? `applied${e.at === null ? '' : ` ${e.at}`}` : e.live ? 'pending' : 'offline (applies it when it reconnects)';
    io.stdout.write(`  ${e.node.padEnd(width)}  ${state}\n`);
  }
  if (waited && !answer.complete) io.stderr.write(`anycdn purge: not applied in time by ${answer.pending.join(', ')}\n`);
}

function messageOf(text: string): string {
  try {
    return (JSON.parse(text) as { message: string }).message ?? text;
  } catch {
    return text;
  }
}
