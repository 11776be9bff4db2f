export { allocateRing, HEADER_BYTES, HEARTBEAT_INTERVAL_MS } from './layout';
export { RingProducer } from './producer';
export { RingConsumer, forEachRecord, type RingSpan, type RingStats } from './consumer';
