/**
 * The client stage: a karmor-compatible reader of any feeder (armorfeed, upstream
 * KubeArmor, the relay) that reconnects instead of exiting.
 */
export {
  alertSpec,
  logSpec,
  messageSpec,
  goFields,
  goJsonIndent,
  goJsonString,
  marshalAlert,
  marshalLog,
  marshalMessage,
  marshalGoFields,
  type GoFields,
  type GoValue,
  type Int64,
  type WireRecord,
} from './gojson';
export { formatEventText, formatMessageText, karmorTime, textKeyOrder, type EventKind } from './text';
export { EventFilter, compileGoRegex, type FilterOptions } from './filters';
export { FeederWatch, FeederStreamError, backoffDelay, decodeWire, type BackoffOptions, type LogFilter, type WatchOptions } from './watch';
export { OutputSink } from './output';
export { runLog, type LogRunOptions, type LogRunResult, type OutputFormat, type StreamCounters } from './run';
