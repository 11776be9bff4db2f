/**
 * The encode stage as the feeder sets it up, and where its batches go: each encoded
 * batch to the log file (logPath), the fan-out and the export, side by side, and what
 * the encoders dropped counted by reason (encode_error, encoded_oversized).
 */
import { readNodeID, type FeederConfig } from '../config';
import { EncodeStage, type EncodedBatch, type EncodeFailure } from '../encode';
import type { NodeExport } from '../export';
import type { FanoutHub } from '../fanout';
import { warmUpRing } from '../ingest';
import type { LogPathOutput } from '../output';
import type { FeederNotices } from './notices';

export class BatchRouter {
  /** Events the encoders dropped: records they could not decode or tasks that failed; events too large for a client. */
  readonly dropped = { encode_error: 0, encoded_oversized: 0 };

  constructor(
    private readonly hub: FanoutHub,
    private readonly output: LogPathOutput | undefined,
    private readonly exporter: NodeExport | undefined,
    private readonly notices: FeederNotices,
  ) {}

  batch(batch: EncodedBatch): void {
    if (this.output !== undefined && batch.logLines !== '') this.output.write(batch.logLines, batch.alerts.count + batch.logs.count);
    this.hub.publishBatch(batch);
    this.exporter?.offerBatch(batch);
    if (batch.failed > 0) {
      this.dropped.encode_error += batch.failed;
      this.notices.undecodable(batch);
    }
    if (batch.oversized > 0) {
      this.dropped.encoded_oversized += batch.oversized;
      this.notices.encodedOversized(batch);
    }
  }

  failure(failure: EncodeFailure): void {
    this.dropped.encode_error += failure.events;
    this.notices.taskFailed(failure);
  }
}

/** Starts the encoders and resolves once the main thread's encode path and the threads are warm. */
export async function startEncodeStage(config: FeederConfig, router: BatchRouter, hub: FanoutHub, logLines: boolean): Promise<EncodeStage> {
  const stage = new EncodeStage(
    {
      cluster: config.cluster,
      host: config.host,
      nodeID: readNodeID(config),
      dropResourceFromProcessLogs: config.dropResourceFromProcessLogs,
      throttling: config.alertThrottling,
      logLines,
    },
    { threads: config.encoderThreads, maxBatchEvents: config.batchSize, maxBatchBytes: Math.max(config.maxEventBytes, 4 << 20), inlineMaxEvents: config.inlineMaxEvents, outputSlabs: config.outputSlabs },
    (batch) => router.batch(batch),
    (failure) => router.failure(failure),
    () => hub.hasFilteredSubscribers(),
  );
  stage.warmUp(warmUpRing(config, config.batchSize));
  await stage.workersWarm();
  return stage;
}

