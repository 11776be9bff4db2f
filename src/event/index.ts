export { ingestFields, alertTypes, logTypes, type IngestEvent, type IngestKey } from './schema';
export {
  validateFrame,
  scanEvent,
  createTape,
  isAlertTape,
  checkNesting,
  K,
  MAX_NESTING,
  ascii,
  readInt,
  readMapHeader,
  readStr,
  readStringEntry,
  strEquals,
  strValue,
  utf8SequenceLength,
  type StrRef,
} from './scan';
export * from './rules';
export { logLine, goString } from './logLine';
