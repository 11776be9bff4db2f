export { ingestFields, alertTypes, logTypes, type IngestEvent, type IngestKey } from './schema';
export type { EventContext } from './rules';
export { validateFrame, scanEvent, createTape, isAlertTape, checkNesting, K, MAX_NESTING } from './scan';
export { logLine, goString } from './logLine';
