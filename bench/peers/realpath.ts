/**
 * One real-path measurement: a server reading producer frames from a Unix socket
 * (`armorfeed serve --source socket`, `gofeeder --socket`), loadclient attached to it,
 * and the Go producer writing into the socket once loadclient's streams are open.
 *
 *   1. start the server on a fresh socket in a temporary directory, wait for its ready line;
 *   2. start loadclient (`--expect` = what the producer will send);
 *   3. wait for its streams: armorfeed, poll GET /stats until that many streams are open;
 *      gofeeder (no such endpoint), a fixed pause;
 *   4. run the producer to the end; the server's "generation" window is the producer's run;
 *   5. wait for loadclient, read armorfeed's ingest counters from /stats, stop the server
 *      with SIGTERM (gofeeder prints its ingest counters then).
 *
 * Every wait is bounded, like measure(): server start, stream registration, the producer
 * (its schedule + 50% + 30 s, or a fixed cap when unpaced), loadclient (its --duration +
 * 20 s), server stop (SIGTERM, SIGKILL after 15 s).
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fetchServerStats, type ServerStats } from '../../src/load/server-stats';
import { onBenchExit, sleep } from './children';
import { runLoadClient, type LoadClientOptions, type LoadClientRun } from './loadclient';
import { crossCheck, noteLoadClient, stopAndNote, type MeasureHooks, type Measurement } from './measure';
import { producerCapMs, producerProblem, runProducer, type ProducerOptions } from './producer';
import { socketServerCommandLine, startSocketServer, type Binaries, type RunningServer, type SystemName } from './servers';

/** The source name armorfeed gives its Unix-socket source in /stats and its summary. */
const SOCKET_SOURCE = 'socket';
/** armorfeed: how long loadclient's streams may take to show up in /stats. */
const STREAMS_WAIT_MS = 15_000;
/** gofeeder has no /stats: a fixed pause for loadclient's HealthCheck and Watch* calls. */
const GOFEEDER_STREAMS_PAUSE_MS = 1_000;
const GOFEEDER_STREAMS_PAUSE_PER_CLIENT_MS = 50;

export interface RealPathOptions {
  /** Cap on an unpaced producer's run, in seconds. */
  unpacedCapS: number;
  /** Streams opened by the hooks (e.g. stalled clients) that must be open before the producer starts. */
  extraStreams?: number;
}

const statsUrl = (server: RunningServer): string | undefined => (server.metricsAddr === undefined ? undefined : `http://${server.metricsAddr}/stats`);

async function stats(server: RunningServer): Promise<ServerStats | undefined> {
  const url = statsUrl(server);
  return url === undefined ? undefined : fetchServerStats(url, 2_000);
}

/**
 * Waits until `expected` Watch* streams are registered (armorfeed) or for a fixed pause
 * (gofeeder). Returns how long it waited and, for armorfeed, how many streams it saw.
 */
async function waitForStreams(server: RunningServer, expected: number, clients: number, lc: { done: boolean }): Promise<{ waitedMs: number; open?: number }> {
  const t0 = performance.now();
  if (server.metricsAddr === undefined) {
    const pauseMs = GOFEEDER_STREAMS_PAUSE_MS + GOFEEDER_STREAMS_PAUSE_PER_CLIENT_MS * clients;
    while (performance.now() - t0 < pauseMs && !lc.done) await sleep(50);
    return { waitedMs: performance.now() - t0 };
  }
  let open = 0;
  while (performance.now() - t0 < STREAMS_WAIT_MS && !lc.done && !server.process.hasExited()) {
    const s = await stats(server);
    open = s?.clients.filter((c) => c.open).length ?? 0;
    if (open >= expected) break;
    await sleep(50);
  }
  return { waitedMs: performance.now() - t0, open };
}

/** armorfeed's socket-source counters, polled briefly until they account for everything sent. */
async function armorfeedIngest(server: RunningServer, sent: number): Promise<{ events: number; ringFull: number; malformed: number } | undefined> {
  const t0 = performance.now();
  let last: { events: number; ringFull: number; malformed: number } | undefined;
  while (performance.now() - t0 < 3_000) {
    const src = (await stats(server))?.ingest[SOCKET_SOURCE];
    if (src !== undefined) {
      last = { events: src.events, ringFull: src.dropped.ring_full, malformed: src.dropped.malformed_input };
      if (last.events + last.ringFull + last.malformed >= sent) break;
    }
    await sleep(100);
  }
  return last;
}

export async function measureRealPath(
  bin: Binaries,
  system: SystemName,
  label: string,
  producer: Omit<ProducerOptions, 'socket'>,
  client: Omit<LoadClientOptions, 'addr'>,
  opts: RealPathOptions,
  hooks: MeasureHooks = {},
): Promise<Measurement> {
  const started = performance.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'peers-sock-'));
  const removeDir = (): void => fs.rmSync(dir, { recursive: true, force: true });
  const unregister = onBenchExit(removeDir);
  const socket = path.join(dir, `${system}.sock`);
  const m: Measurement = {
    system,
    label,
    serverCommand: socketServerCommandLine(system, bin, socket),
    loadclientArgs: [],
    loadavg1: { start: os.loadavg()[0], end: NaN },
    wallS: 0,
    problems: [],
    observations: [],
    extra: { producerOptions: producer },
  };
  let server: RunningServer | undefined;
  try {
    server = await startSocketServer(system, bin, socket);
    if (!fs.existsSync(socket)) m.observations.push(`${system} ${label}: ready, but ${socket} does not exist`);
    await hooks.beforeClient?.(server);

    const lcState = { done: false };
    const lcPromise: Promise<LoadClientRun> = runLoadClient(bin.peersBin, bin.repoRoot, { ...client, addr: server.addr }).then((run) => {
      lcState.done = true;
      return run;
    });
    const expectedStreams = client.clients * (client.streams === 'both' ? 2 : 1) + (opts.extraStreams ?? 0);
    const waited = await waitForStreams(server, expectedStreams, client.clients, lcState);
    m.extra.streamsWait = { expected: expectedStreams, ...waited };
    if (waited.open !== undefined && waited.open < expectedStreams) {
      m.observations.push(`${system} ${label}: only ${waited.open} of ${expectedStreams} streams were open after ${Math.round(waited.waitedMs)} ms; the producer started anyway`);
    }

    if (!lcState.done) {
      server.markGeneration('start');
      const p = { ...producer, socket };
      m.producer = await runProducer(bin.peersBin, bin.repoRoot, p, producerCapMs(p, opts.unpacedCapS));
      server.markGeneration('end');
      const pProblem = producerProblem(m.producer, producer.count);
      if (pProblem !== undefined) m.problems.push(pProblem);
    }

    m.loadclient = await lcPromise;
    noteLoadClient(m);

    const sent = m.producer?.report?.sent ?? 0;
    const fromStats = system === 'armorfeed' ? await armorfeedIngest(server, sent) : undefined;
    await hooks.beforeStop?.(server, m);
    await stopAndNote(system, server, m);
    checkIngest(m, sent, fromStats);
    crossCheck(m);
  } catch (err) {
    m.problems.push(err instanceof Error ? err.message : String(err));
    if (server !== undefined && !server.process.hasExited()) m.server ??= await server.stop(5_000);
  } finally {
    await hooks.afterStop?.(m);
    removeDir();
    unregister();
  }
  m.loadavg1.end = os.loadavg()[0];
  m.wallS = (performance.now() - started) / 1000;
  await sleep(300);
  return m;
}

/**
 * Events sent against events ingested. armorfeed's figures come from /stats (checked
 * against its final stats, written at exit to --statsFile); gofeeder's from its
 * `socket ingest` line on SIGTERM.
 * Anything sent that is neither ingested nor counted as dropped or malformed is an
 * observation: the socket itself loses nothing.
 */
function checkIngest(m: Measurement, sent: number, fromStats: { events: number; ringFull: number; malformed: number } | undefined): void {
  if (m.producer?.report === undefined) return;
  const summary = m.server?.summary.ingest[SOCKET_SOURCE];
  if (m.system === 'armorfeed') {
    const src = fromStats ?? (summary === undefined ? undefined : { events: summary.events, ringFull: summary.ringFull ?? 0, malformed: summary.malformed });
    if (src === undefined) {
      m.observations.push(`armorfeed ${m.label}: no socket ingest counters (neither /stats nor the final stats)`);
      return;
    }
    m.ingest = { sent, ingested: src.events, ringFull: src.ringFull, malformed: src.malformed, from: fromStats !== undefined ? 'GET /stats' : 'final stats (--statsFile)' };
    if (fromStats !== undefined && summary !== undefined && (summary.events !== fromStats.events || (summary.ringFull ?? 0) !== fromStats.ringFull)) {
      m.observations.push(`armorfeed ${m.label}: /stats says in=${fromStats.events} ring_full=${fromStats.ringFull}, the final stats in=${summary.events} ring_full=${summary.ringFull}`);
    }
  } else {
    if (summary === undefined) {
      m.observations.push(`gofeeder ${m.label}: no "socket ingest" line on SIGTERM`);
      return;
    }
    m.ingest = { sent, ingested: summary.events, malformed: summary.malformed, from: 'SIGTERM line' };
  }
  const i = m.ingest;
  const accounted = i.ingested + (i.ringFull ?? 0) + i.malformed;
  if (accounted !== sent) {
    m.observations.push(`${m.system} ${m.label}: the producer sent ${sent}; the server ingested ${i.ingested}${i.ringFull !== undefined ? ` + ring_full ${i.ringFull}` : ''} + malformed ${i.malformed} = ${accounted}`);
  }
}
