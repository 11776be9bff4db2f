export { EncodeStage, type EncodeStageOptions } from './stage';
export type { EncodeFailure } from './pump';
export * from './batch';
export { NO_SLAB, SlabPool, noSlabs, UNCONFIRMED_WRITE_GRACE_MS, type SlabArea, type SlabRefs, type SlabStats } from './slabs';
export { createSpanEncoder, type SpanEncoder } from './encodeSpan';
export { warmUpTask } from './pool';
