/**
 * The BGP agent beside an edge: probe its health once per interval, decide what to announce
 * (decision.ts), and make BIRD hold that decision (the announce include, then `configure`). It
 * starts withdrawn, logs every transition with its reason, and on stop drains (graceful
 * shutdown) and ends withdrawn.
 *
 * BIRD is checked on every round with `show status`: when it restarted (new "Last reboot"), was
 * reconfigured by someone else, was reconnected after its socket went away, or the include no
 * longer says what the agent wants, the agent writes the include and runs `configure` again
 * (a re-assert). A BIRD started by its unit begins withdrawn (ExecStartPre), so the agent's
 * re-assert is what announces again.
 *
 * A watchdog timer ticks four times per stall limit (fall × interval by default), whatever the
 * loop is waiting for: when a tick comes far too late, the process was not running (a stopped or
 * starved host), and decision.ts makes the edge's health unknown. The loop is woken to withdraw at
 * once, before its next probe; a probe in flight across the stall does not count.
 */
import type { Logger } from '../src/log.js';
import { stallLimit, type AgentConfig } from './agent-config.js';
import type { AgentMetrics } from './agent-metrics.js';
import type { AnnounceState } from './announce.js';
import type { BirdControl } from './bird-control.js';
import { configureAccepted, parseStatus, replyText, sameBirdTime, type BirdReply, type BirdStatus } from './bird-reply.js';
import { INITIAL_AGENT_STATE, isFinished, nextDeadline, step, type AgentEvent, type AgentNote, type AgentState, type DecisionConfig } from './decision.js';
import type { ProbeResult } from './hysteresis.js';

export interface AgentDeps {
  config: AgentConfig;
  logger: Logger;
  metrics: AgentMetrics;
  bird: BirdControl;
  probe(): Promise<ProbeResult>;
  writeAnnounce(state: AnnounceState): Promise<void>;
  readAnnounce(): Promise<AnnounceState | undefined>;
  /** Monotonic milliseconds. */
  now(): number;
}

export interface Agent {
  /** Resolves once stopped: true when BIRD confirmed the withdrawal, false when it could not be reached. */
  done: Promise<boolean>;
  /** Stop: drain first (graceful shutdown), or at once when `immediate`. */
  stop(immediate: boolean): void;
  state(): AgentState;
}

/** What BIRD was last told, and which BIRD (boot, configuration, connection) heard it. */
interface Applied {
  state: AnnounceState;
  lastReboot: string | undefined;
  lastReconfiguration: string | undefined;
  connection: number;
}

export function startAgent(deps: AgentDeps): Agent {
  const { config, logger, metrics, bird, now } = deps;
  const stall = stallLimit(config.health);
  const decision: DecisionConfig = { rise: config.health.rise, fall: config.health.fall, damping: config.damping, gracefulShutdown: config.gracefulShutdown, stallLimit: stall };
  let state = INITIAL_AGENT_STATE;
  let applied: Applied | undefined;
  let birdUp: boolean | undefined;
  let stopRequest: { immediate: boolean } | undefined;
  let wake: (() => void) | undefined;
  /** The announce state changed since BIRD was last told: tell it before the next probe. */
  let changed = false;

  const apply = (event: AgentEvent): void => {
    const result = step(state, event, now(), decision);
    state = result.state;
    for (const note of result.notes) report(note);
    if (result.notes.some((n) => n.kind === 'announce')) changed = true;
    metrics.healthy.set(state.health.healthy ? 1 : 0);
    metrics.heldDown.set(state.damping.heldUntil !== undefined && now() < state.damping.heldUntil ? 1 : 0);
    metrics.setAnnounce(state.announce);
  };

  const report = (note: AgentNote): void => {
    switch (note.kind) {
      case 'health':
        logger.info({ healthy: note.healthy, reason: note.reason }, note.healthy ? 'edge healthy' : 'edge unhealthy');
        break;
      case 'held-down':
        logger.warn({ flips: note.flips, windowMs: config.damping.window, holdDownMs: note.until - now() }, 'flapping: held withdrawn');
        break;
      case 'stalled':
        metrics.stalls.inc();
        logger.warn({ gapMs: Math.round(note.gap), limitMs: note.limit }, 'the agent did not run: edge health unknown until rise passing probes');
        break;
      case 'stale-probe':
        logger.debug({ sentMs: Math.round(note.sent), resumedMs: Math.round(note.resumedAt) }, 'probe from before the stall ignored');
        break;
      case 'announce':
        metrics.transitions.inc({ to: note.to });
        logger.info({ from: note.from, to: note.to, reason: note.reason }, 'announce state');
        break;
    }
  };

  const command = async (text: 'show status' | 'configure'): Promise<BirdReply> => {
    try {
      const reply = await bird.command(text);
      metrics.birdCommands.inc({ command: text, result: reply.code >= 8000 ? 'error' : 'ok' });
      return reply;
    } catch (err) {
      metrics.birdCommands.inc({ command: text, result: 'unreachable' });
      throw err;
    }
  };

  const setBirdUp = (up: boolean, detail: Record<string, unknown>): void => {
    if (birdUp !== up) logger[up ? 'info' : 'warn'](detail, up ? 'BIRD reachable' : 'BIRD unreachable');
    birdUp = up;
    metrics.birdUp.set(up ? 1 : 0);
  };

  /** Make BIRD hold `wanted`; true when it does (confirmed by BIRD). */
  const reconcile = async (wanted: AnnounceState): Promise<boolean> => {
    let status: BirdStatus;
    try {
      status = parseStatus(await command('show status'));
    } catch (err) {
      // `applied` is kept: when BIRD answers again, its new boot time or connection says why
      // the state is told again.
      setBirdUp(false, { socket: bird.path, error: (err as Error).message });
      // Keep the include right for whenever BIRD reads it next.
      if ((await deps.readAnnounce()) !== wanted) await deps.writeAnnounce(wanted);
      return false;
    }
    setBirdUp(true, { socket: bird.path, greeting: bird.greeting, lastReboot: status.lastReboot });
    const file = await deps.readAnnounce();
    let reassert: string | undefined;
    if (applied !== undefined && applied.state === wanted) {
      const reconnected = bird.connections !== applied.connection;
      // A boot time printed a millisecond apart is the same boot while the wall clock drifts
      // (BIRD_TIME_SLACK_MS); on a new connection any difference is a new BIRD.
      if (!sameBirdTime(status.lastReboot, applied.lastReboot) || (reconnected && status.lastReboot !== applied.lastReboot)) reassert = 'BIRD restarted';
      else if (!sameBirdTime(status.lastReconfiguration, applied.lastReconfiguration)) reassert = 'BIRD reconfigured';
      else if (reconnected) reassert = 'BIRD reconnected';
      else if (file !== wanted) reassert = 'announce file changed';
      else {
        // The same boot and configuration, printed as the wall clock drifts: follow the drift, so
        // it never adds up to the slack.
        applied.lastReboot = status.lastReboot;
        applied.lastReconfiguration = status.lastReconfiguration;
        return true;
      }
    }
    await deps.writeAnnounce(wanted);
    const reply = await command('configure');
    if (!configureAccepted(reply)) {
      applied = undefined;
      logger.error({ state: wanted, code: reply.code, reply: replyText(reply) }, 'BIRD refused the configuration');
      return false;
    }
    const after = parseStatus(await command('show status'));
    applied = { state: wanted, lastReboot: after.lastReboot, lastReconfiguration: after.lastReconfiguration, connection: bird.connections };
    if (reassert !== undefined) {
      metrics.reasserts.inc({ reason: reassert });
      logger.info({ state: wanted, reason: reassert }, 'reasserted');
    } else {
      logger.info({ state: wanted, reply: replyText(reply) }, 'BIRD holds the state');
    }
    return true;
  };

  /** Tell BIRD `state.announce`; true when BIRD holds it. */
  const tell = async (): Promise<boolean> => {
    changed = false;
    try {
      return await reconcile(state.announce);
    } catch (err) {
      applied = undefined;
      logger.error({ state: state.announce, error: (err as Error).message }, 'could not tell BIRD');
      return false;
    }
  };

  /** While a probe is awaited: give up waiting for it (its result would be stale). */
  let interrupt: (() => void) | undefined;

  // Ticks at least four times per stall limit, so only a process that did not run misses one.
  let watchdog: NodeJS.Timeout | undefined;
  const watch = (): void => {
    watchdog = setTimeout(() => {
      const resumed = state.resumedAt;
      apply({ type: 'tick' });
      if (state.resumedAt !== resumed) interrupt?.();
      if (changed) wake?.();
      watch();
    }, Math.max(10, Math.floor(stall / 4)));
    watchdog.unref();
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, Math.max(0, ms));
      wake = done;
    });

  const run = async (): Promise<boolean> => {
    logger.info({ health: config.health.url, socket: config.bird.socket, announceFile: config.bird.announceFile }, 'agent started: withdrawn until the edge proves healthy');
    // Fail-closed from the first moment: whatever the include said before, nothing is announced
    // until the edge has passed `rise` probes.
    try {
      await reconcile('withdrawn');
    } catch (err) {
      logger.error({ error: (err as Error).message }, 'could not tell BIRD');
    }
    let nextProbe = now();
    apply({ type: 'tick' });
    watch();
    for (;;) {
      if (stopRequest !== undefined) {
        apply({ type: 'stop', immediate: stopRequest.immediate });
        stopRequest = undefined;
      }
      // A stall the watchdog noticed (or this tick does): withdraw before probing.
      apply({ type: 'tick' });
      if (changed) await tell();
      if (!state.stopping && now() >= nextProbe) {
        nextProbe = now() + config.health.interval;
        const sent = now();
        // A stall noticed meanwhile: withdraw now rather than once the probe is answered (it
        // ends by its own timeout; its result, from before the stall, would be ignored).
        const result = await Promise.race([deps.probe(), new Promise<undefined>((resolve) => (interrupt = () => resolve(undefined)))]);
        interrupt = undefined;
        if (result !== undefined) {
          metrics.probes.inc({ result: result.kind });
          metrics.probeSeconds.observe((now() - sent) / 1000);
          if (result.kind === 'fail') logger.debug({ reason: result.reason }, 'probe failed');
          apply({ type: 'probe', result, sent });
        }
      }
      const held = await tell();
      if (isFinished(state) && stopRequest === undefined) return held;
      const deadlines = [nextDeadline(state, now()), state.stopping ? undefined : nextProbe].filter((t): t is number => t !== undefined);
      // Stopping with the withdrawal not yet confirmed: try again soon, bounded by the stop timeout.
      const until = deadlines.length > 0 ? Math.min(...deadlines) : now() + Math.min(config.health.interval, 1000);
      // A change while BIRD was being told (a stall the watchdog noticed): tell it now.
      if (stopRequest === undefined && !changed) await sleep(until - now());
    }
  };

  const done = run().finally(() => clearTimeout(watchdog)).then((held) => {
    logger.info({ confirmed: held }, held ? 'agent stopped: withdrawn' : 'agent stopped: BIRD unreachable, the include says withdrawn');
    return held;
  });

  return {
    done,
    stop(immediate) {
      stopRequest = { immediate: immediate || (stopRequest?.immediate ?? false) };
      wake?.();
    },
    state: () => state,
  };
}

/**
 * `anycdn bgp withdraw`: write the withdrawn include and `configure`, once (the agent unit's
 * ExecStopPost). BIRD not running is fine: it starts withdrawn. Returns true when BIRD confirmed
 * or was not running, false when it refused the configuration.
 */
export async function withdrawOnce(deps: Pick<AgentDeps, 'bird' | 'logger' | 'writeAnnounce'>): Promise<boolean> {
  await deps.writeAnnounce('withdrawn');
  let reply: BirdReply;
  try {
    reply = await deps.bird.command('configure');
  } catch (err) {
    deps.logger.info({ socket: deps.bird.path, error: (err as Error).message }, 'BIRD not reachable: the include says withdrawn for its next start');
    return true;
  } finally {
    deps.bird.close();
  }
  if (!configureAccepted(reply)) {
    deps.logger.error({ code: reply.code, reply: replyText(reply) }, 'BIRD refused the configuration');
    return false;
  }
  deps.logger.info({ reply: replyText(reply) }, 'withdrawn');
  return true;
}
