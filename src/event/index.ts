export { ingestFields, alertTypes, logTypes, type IngestEvent, type IngestKey } from './schema';
export { toAlert, toLog, isAlert, deriveEventData, toValidUtf8, type EventContext } from './toProto';
export { validateFrame, scanEvent, createTape, isAlertTape, checkNesting, K, MAX_NESTING } from './scan';
export { logLine, goString } from './logLine';
