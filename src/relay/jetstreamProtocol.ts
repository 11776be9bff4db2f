/**
 * What crosses between the main thread (jetstreamThread.ts) and the relay's JetStream
 * thread (jetstream.worker.ts): the start data, the messages each way, and the two kinds
 * of shared Int32 slots. The events themselves travel as event batches (eventBatch.ts).
 *
 *   main                                              JetStream thread
 *   workerData {settings, control, generation, resume} -->  connect, shared feed
 *   openReplay / stopReplay / close ---------------->  replay feeds (paced by their slots)
 *   <-- events {target, batch, consumers}  one per target per turn of its loop (or per MAX_BATCH_EVENTS)
 *   <-- status, log, replayFailed, closed
 */
import type { ExportConfig } from '../export';
import type { RelayEventBatch } from './eventBatch';
import type { ConsumerStats } from '../stats';
import type { FeedStart, SourceStatus } from './jetstream';
import type { EventKind } from './scan';

/** The shared feed's target in `events` messages; a replay's is its id (from 1). */
export const SHARED_TARGET = 0;

/**
 * The control slots (one SharedArrayBuffer per relay, Int32):
 *
 *   slot           written by   meaning
 *   0 ATTRS        main         1 while a client of the shared feed has a server-side filter
 *                                (the thread then fills each batch's attrs), else 0
 */
export const ControlSlot = { ATTRS: 0 } as const;
export const CONTROL_SLOTS = 1;

/**
 * A replay's pacing slots (one SharedArrayBuffer per replay, Int32). The thread sizes each
 * pull to the room left in the client's queue, counting what it sent that the main thread
 * has not taken yet as queued already:
 *
 *   slot           written by   meaning
 *   0 DEPTH        main         events in the client's queue
 *   1 RECEIVED     main         events of this replay the main thread has taken from the
 *                                thread (mod 2^32), stored after DEPTH
 *   2 CAPACITY     main         the client's queue size (once, before the replay opens)
 *
 * The main thread stores DEPTH then RECEIVED; the thread loads RECEIVED then DEPTH (both
 * sequentially consistent), so it never sees a RECEIVED newer than its DEPTH: a torn pair
 * can only overstate what is queued (events counted both in transit and in the queue),
 * never understate it. The main thread refreshes both after each batch it publishes and
 * every REPLAY_ROOM_POLL_MS while replays run; the thread looks that often when full.
 */
export const ReplaySlot = { DEPTH: 0, RECEIVED: 1, CAPACITY: 2 } as const;
export const REPLAY_SLOTS = 3;
export const REPLAY_ROOM_POLL_MS = 5;

/**
 * Events a replay's feed may ask for now: at most half the room left in the client's queue
 * (`sent`: events the thread sent this replay, mod 2^32), shared by its `feeds`, and
 * nothing while the queue is over half full.
 */
export function replayRoom(slots: Int32Array, sent: number, feeds: number): number {
  const received = Atomics.load(slots, ReplaySlot.RECEIVED);
  const depth = Atomics.load(slots, ReplaySlot.DEPTH);
  const capacity = slots[ReplaySlot.CAPACITY];
  const queued = depth + ((sent - received) | 0);
  return queued <= capacity / 2 ? Math.floor((capacity - queued) / 2 / Math.max(1, feeds)) : 0;
}

export interface JetStreamThreadSettings {
  /** The NATS options relay --from shares with the export (credentials, TLS), read in the thread. */
  nats: ExportConfig;
  servers: string[];
  /** The connection's name on the NATS server. */
  name: string;
  stream: string;
  /** The shared feed's subject filters. */
  filters: string[];
}

export interface JetStreamWorkerData {
  settings: JetStreamThreadSettings;
  control: SharedArrayBuffer;
  /** 0 for the first thread, then +1 for each one started after a thread died. */
  generation: number;
  /** Where the shared feed resumes (a thread started again): see JetStreamSourceSettings.resume. */
  resume?: { counts: ConsumerStats; start: number }[];
}

export type ToJetStreamThread =
  /**
   * Opens a replay's ordered feeds, one per filter, from `starts[i]`; only events of `kind`
   * are sent; `attrs` says whether its client filters on the server; `slots` are its
   * pacing slots.
   */
  | { type: 'openReplay'; id: number; kind: EventKind; filters: string[]; starts: FeedStart[]; attrs: boolean; slots: SharedArrayBuffer }
  | { type: 'stopReplay'; id: number }
  /** Stops every feed, posts what it gathered, closes the connection, answers `closed`. */
  | { type: 'close' };

export type FromJetStreamThread =
  | { type: 'log'; level: 'info' | 'warn'; text: string }
  | { type: 'status'; status: SourceStatus }
  /** Events for `target` (SHARED_TARGET or a replay id), with its feeds' counts after them. */
  | { type: 'events'; target: number; batch: RelayEventBatch; consumers: ConsumerStats[] }
  /** A replay's consumer could not be created or a pull failed: its stream ends UNAVAILABLE. */
  | { type: 'replayFailed'; id: number; message: string }
  | { type: 'closed' };
