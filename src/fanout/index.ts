export { FanoutHub, type HubCounters } from './hub';
export { Subscriber, type FramedSink, type AttrFilter, type AttrMatcher, type SubscriberInfo } from './subscriber';
export { ClientQueue, type DropCounts, type DropReason, type LossReason } from './clientQueue';
export { SlowNotifier } from './slowNotifier';
export { clientStats, ClientDropReporter, type ClientStats } from './stats';
