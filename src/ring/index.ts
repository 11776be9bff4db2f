export { allocateRing, HEADER_BYTES } from './layout';
export { RingProducer } from './producer';
export { RingConsumer, forEachRecord, type RingSpan, type RingStats } from './consumer';
