export { FanoutHub, type HubCounters } from './hub';
export { Subscriber, type FramedSink, type StreamKind, type AttrFilter, type AttrMatcher, type SubscriberInfo, type LatencySummary } from './subscriber';
export { ClientQueue, type DropCounts, type DropReason } from './clientQueue';
export { SlowNotifier } from './slowNotifier';
