/**
 * The ingest stage: each configured source gets its own worker thread and its own ring;
 * the thread validates and writes (Admission), the main thread only learns about
 * readiness, rejections (as counts and samples) and the end (IngestThread, thread.ts),
 * and restarts a socket or TCP source's thread that died or wedged (SupervisedSource,
 * supervisor.ts).
 */
export { IngestThread, type SourceEvents } from './thread';
export { restartReasons, SupervisedSource, type RestartReason, type SupervisorEvents } from './supervisor';
export { encodeFrame, FrameReader, FRAME_HEADER_BYTES } from './frames';
export { syntheticEvent, warmUpEvents, warmUpRing, WARM_UP_RING_EVENTS } from './synthetic';
export { Admission, type Admitted, type SourceReport } from './admission';
export type { FromSource, ToSource, SourceWorkerData } from './protocol';
