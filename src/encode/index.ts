export { EncoderPool, type EncoderPoolOptions, type EncodeFailure } from './pool';
export * from './batch';
export { NO_SLAB, SlabPool, noSlabs, type SlabArea, type SlabRefs, type SlabStats } from './slabs';
