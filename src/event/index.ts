export { ingestFields, alertTypes, logTypes, type IngestEvent, type IngestKey } from './schema';
export { validateEvent, isAlert } from './validate';
export { toAlert, toLog, deriveEventData, isThrottleEligible, toValidUtf8, type EventContext } from './toProto';
export { logLine, goString } from './logLine';
