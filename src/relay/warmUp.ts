/**
 * Warms up the feeders-mode relay's path before it dials its first node: sample events
 * go through a scratch node on loopback (a LogService server fed with an encoded sample
 * batch, the server's fan-out and writes) into a scratch Upstream (its HTTP/2 reader,
 * upstream.ts, the relay's batcher and scan), the code every real event then runs.
 *
 * Cold, that code is interpreted: one gofeeder at 20,000 ev/s through a fresh relay had
 * p99 98-184 ms at the relay's client over the first 10 s (the first few hundred ms of
 * traffic queued behind 25-76 ms runs of upstream reads, then on grpc-js), where the same relay's second
 * run had 6 ms, and the direct client 2 ms. The ingest threads and encoders warm up the
 * same way (ingest/source.worker.ts, encode/pool.ts).
 *
 * Nothing of it reaches the relay's clients, stats or log: its hubs, batcher and log are
 * its own, and it is bounded in events and time. A warm-up that cannot finish (no
 * loopback, a slow machine) is given up, not waited for: the relay is only cold then.
 */
import type { FeederConfig } from '../config';
import { createSpanEncoder, warmUpTask } from '../encode';
import { FanoutHub } from '../fanout';
import { deadlineSignal } from '../export';
import { warmUpRing } from '../ingest';
import { DaemonLog } from '../messages';
import { startServer } from '../server';
import { RelayBatcher } from './batcher';
import { Upstream } from './upstream';

/** Events in the sample batch, and how many times it is sent. */
export const WARM_UP_SAMPLE_EVENTS = 256;
export const WARM_UP_ROUNDS = 100;
/** The whole warm-up, connecting included, stops here. */
const DEADLINE_MS = 5000;

export interface WarmUpResult {
  /** Events the scratch upstream received. */
  events: number;
  ms: number;
  /** Why it stopped before its last round, if it did. */
  gaveUp?: string;
}

const noThrottle = { enabled: false, maxAlertPerSec: 0, throttleSec: 0 };

export async function warmUpFeedersPath(config: FeederConfig): Promise<WarmUpResult> {
  const started = performance.now();
  const deadline = started + DEADLINE_MS;
  const log = new DaemonLog({ cluster: config.cluster, host: 'warm-up', hostIP: '', debug: false, echo: false });
  const nodeHub = new FanoutHub(noThrottle, 'warm-up');
  const server = await startServer({ bind: '127.0.0.1', port: 0, healthPort: -1, queueSize: WARM_UP_SAMPLE_EVENTS * 4, mainLoopStallMs: config.mainLoopStallMs }, nodeHub, log);
  let received = 0;
  /** The round being waited for: settled once `want` events came, or at the deadline. */
  let round: { want: number; arrived: () => void } | undefined;
  const batcher = new RelayBatcher(new FanoutHub(noThrottle, 'warm-up'));
  const upstream = new Upstream(
    server.grpcAddress,
    { backoff: { initialMs: 20, maxMs: 100 }, healthTimeoutMs: 1000, clientName: 'armorfeed-relay-warm-up' },
    (kind, message, us) => {
      received++;
      if (round !== undefined && received >= round.want) round.arrived();
      return batcher.add(kind, message, us);
    },
    log,
  );
  const result = (gaveUp?: string): WarmUpResult => ({ events: received, ms: Math.round(performance.now() - started), ...(gaveUp !== undefined ? { gaveUp } : {}) });
  try {
    upstream.start();
    if (!(await until(() => nodeHub.count('alerts') >= 1 && nodeHub.count('logs') >= 1, deadline))) return result('the scratch node did not get the alerts and logs streams');
    const sampleTask = warmUpTask(warmUpRing({ cluster: config.cluster, host: 'warm-up' }, WARM_UP_SAMPLE_EVENTS));
    if (sampleTask === undefined) return result('the sample ring is empty');
    const batch = createSpanEncoder({ cluster: config.cluster, host: 'warm-up', nodeID: '', dropResourceFromProcessLogs: false, throttling: false, logLines: false })(sampleTask);
    for (let i = 0; i < WARM_UP_ROUNDS; i++) {
      const want = received + batch.alerts.count + batch.logs.count;
      const arrived = deadlineSignal(deadline);
      round = { want, arrived: arrived.fire };
      nodeHub.publishBatch(batch);
      const ok = await arrived.settled;
      round = undefined;
      if (!ok) return result(`round ${i + 1} of ${WARM_UP_ROUNDS} did not arrive in time`);
    }
    return result();
  } finally {
    upstream.stop();
    await server.shutdown(0);
  }
}


/**
 * Resolves true once `done()` holds, false at `deadline`: for the scratch node's side of
 * the streams, which has no event of its own to wait on (checked every 5 ms, a few times).
 */
async function until(done: () => boolean, deadline: number): Promise<boolean> {
  while (!done()) {
    if (performance.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  return true;
}
