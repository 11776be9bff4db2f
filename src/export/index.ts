/**
 * Export to NATS JetStream (`serve --export`): every Alert, Log and daemon Message of
 * this node published on `<prefix>.<cluster>.<node>.alerts|logs|messages`, acknowledged,
 * deduplicated on retry, and counted when it cannot be.
 *
 *   thread.ts      the stage's main-thread side: offers from the fan-out's batches, admission,
 *                  sequence numbers, counters read from the export thread's shared cell
 *   export.worker.ts  the export thread: every Exporter of the process (threadProtocol.ts, statsCell.ts)
 *   exporter.ts    one node's export in that thread: connection states, stream check
 *   buffer.ts      the bounded export buffer and its accounting identity
 *   publisher.ts   async publish with a window of PubAcks, timeouts, retries
 *   stream.ts      the stream: check, create, subject coverage
 *   subjects.ts    subjects, Nats-Msg-Id, headers
 *   connection.ts  NATS connection options (credentials and TLS from files)
 *   options.ts     validation of the export* options
 *   check.ts       `armorfeed export-check`
 *   pause.ts       a retry wait that close() cuts short (also the JetStream relay's); a deadline-bounded signal (the warm-ups)
 */
export { ExportThread, NodeExport } from './thread';
export { STARTUP_WAIT_MS, type ExportLog, type ExportSettings, type ExportState, type ExportStats } from './exporter';
export { exportDropReasons, type ExportDropReason } from './buffer';
export { exportCheck, type ExportCheckReport } from './check';
export { HEADER_MSG_ID, HEADER_NODE_ID, HEADER_SEQ, HEADER_UPDATED_TIME, subjectsFor, subjectToken, type ExportStreamKind } from './subjects';
export { parseServers, validateExportConfig, validateNatsAccess, type ExportConfig } from './options';
export { connectionOptions } from './connection';
export { deadlineSignal, WakeableSleep } from './pause';
