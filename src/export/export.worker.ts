/**
 * The export thread: every Exporter of this process (one for `serve`, one per node for
 * `relay --export`) runs here, with its NATS connection, buffer and PubAck handling, so
 * the NATS client's work (headers, publishes, parsing acks in chunks of hundreds) never
 * runs between the main thread's gRPC writes. The main thread posts copies of the
 * events' bytes (thread.ts) and reads the counters from a shared cell (statsCell.ts).
 */
import * as os from 'node:os';
import { parentPort } from 'node:worker_threads';
import { ArmorfeedError } from '../errors';
import { runExportTestHook } from '../testHooks';
import { Exporter, type ExportLog } from './exporter';
import { ExportStatsCell } from './statsCell';
import type { FromExportThread, ToExportThread } from './threadProtocol';

/** How often each cell is refreshed besides after every message (acks and timeouts change it in between). */
const STATS_EVERY_MS = 20;

interface Hosted {
  exporter: Exporter;
  cell: ExportStatsCell;
  received: number;
  receivedBytes: number;
  status: string;
}

const port = parentPort;
if (port === null) throw new Error('export.worker.ts runs as a worker thread');
const post = (msg: FromExportThread): void => port.postMessage(msg);
const log: ExportLog = {
  info: (text) => post({ type: 'log', level: 'info', text }),
  warn: (text) => post({ type: 'log', level: 'warn', text }),
  error: (text) => post({ type: 'log', level: 'error', text }),
};
const hosted = new Map<number, Hosted>();
let niced = false;

/**
 * Lowers this thread's priority (on Linux setpriority(0) applies to the calling thread
 * only): the export is background work, and on a busy machine a thread of equal weight
 * beside nats-server took CPU from the fan-out when it needed it (measured on 2 cores at
 * 20,000 events/s: the gRPC clients' p99 ~5-11 ms with 0 against ~3.5-5 ms with 10).
 */
function nice(value: number): void {
  if (niced || value === 0) return;
  niced = true;
  try {
    os.setPriority(value);
  } catch (err) {
    log.warn(`export: cannot lower the export thread's priority (exportThreadNice ${value}): ${(err as Error).message}`);
  }
}

function publish(id: number, h: Hosted): void {
  h.cell.write(h.exporter.counters(h.received, h.receivedBytes));
  const s = h.exporter.status();
  const status = `${s.state}\n${s.server}\n${s.lastError}`;
  if (status !== h.status) {
    h.status = status;
    post({ type: 'status', id, ...s });
  }
}

const timer = setInterval(() => {
  for (const [id, h] of hosted) publish(id, h);
}, STATS_EVERY_MS);

port.on('message', (msg: ToExportThread) => {
  switch (msg.type) {
    case 'open': {
      nice(msg.settings.exportThreadNice);
      const h: Hosted = { exporter: new Exporter(msg.settings, log, msg.nodeId), cell: new ExportStatsCell(msg.cell), received: 0, receivedBytes: 0, status: '' };
      hosted.set(msg.id, h);
      h.exporter.started(msg.waitMs).then(
        () => {
          publish(msg.id, h);
          post({ type: 'started', id: msg.id });
        },
        (err: unknown) => {
          publish(msg.id, h);
          post({ type: 'started', id: msg.id, error: { code: err instanceof ArmorfeedError ? err.code : undefined, message: err instanceof Error ? err.message : String(err) } });
        },
      );
      return;
    }
    case 'offer': {
      const h = hosted.get(msg.id);
      if (h === undefined) return;
      h.received += msg.seqs.length;
      h.receivedBytes += msg.bytes.length;
      if (msg.kind !== 'messages') runExportTestHook(msg.bytes);
      h.exporter.offerPayloads(msg.kind, msg.bytes, msg.starts, msg.ends, msg.seqs);
      publish(msg.id, h);
      return;
    }
    case 'close': {
      const h = hosted.get(msg.id);
      if (h === undefined) {
        post({ type: 'closed', id: msg.id });
        return;
      }
      void h.exporter.close().finally(() => {
        publish(msg.id, h);
        hosted.delete(msg.id);
        post({ type: 'closed', id: msg.id });
        if (hosted.size === 0 && msg.last) clearInterval(timer);
      });
      return;
    }
  }
});
