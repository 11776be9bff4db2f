/**
 * The relay's JetStream thread (relay --from): the NATS connection, the shared feed's
 * ordered consumers and every replay's, so the NATS client's per-message work (parsing
 * the protocol and each message's headers and reply subject, its iterators and timers)
 * and its garbage never run between the main thread's gRPC writes.
 *
 * Per message it reads the subject (the kind), the Armorfeed-Node-Id and Armorfeed-Seq
 * headers (shared feed), walks the event for its HostName (and the filter attributes
 * while a client filters on the server), and gathers it into its target's batch. At the
 * end of the turn (or at MAX_BATCH_EVENTS) each target's batch is laid out in one buffer
 * and posted, transferred (eventBatch.ts): the main thread hands the views to the fan-out
 * as they are. Replays pull at most the room their client's queue has left, read from
 * their pacing slots (jetstreamProtocol.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { Msg } from '@nats-io/transport-node';
import { connectionOptions, HEADER_NODE_ID, HEADER_SEQ } from '../export';
import { kindOfMsg, NumberHeader, RepeatedHeader } from './natsMsg';
import { runRelayTestHook } from '../testHooks';
import { nowMicros } from '../wire/time';
import { EventBatchBuilder } from './eventBatch';
import { JetStreamSource, OrderedFeed, type FeedPacing, type ThreadLog } from './jetstream';
import type { ConsumerStats } from '../stats';
import { ControlSlot, REPLAY_ROOM_POLL_MS, replayRoom, SHARED_TARGET, type FromJetStreamThread, type JetStreamWorkerData, type ToJetStreamThread } from './jetstreamProtocol';

const port = parentPort;
if (port === null) throw new Error('jetstream.worker.ts runs as a worker thread');
const data = workerData as JetStreamWorkerData;
const control = new Int32Array(data.control);
const post = (msg: FromJetStreamThread, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);
const log: ThreadLog = {
  info: (text) => post({ type: 'log', level: 'info', text }),
  warn: (text) => post({ type: 'log', level: 'warn', text }),
};

/** Where a feed's events go: the shared feed, or one replay. */
interface Target {
  id: number;
  builder: EventBatchBuilder;
  /** Its feeds' counts, posted with each batch. */
  consumers: () => ConsumerStats[];
  scheduled: boolean;
}

/** Set once a test hook crashes this thread: nothing more is posted. */
let crashing = false;

function flush(t: Target): void {
  t.scheduled = false;
  if (crashing) return;
  const taken = t.builder.take();
  if (taken === undefined) return;
  const { batch, transfer } = taken;
  if (runRelayTestHook(new Uint8Array(batch.buffer, 0, batch.bytes), data.generation)) {
    crashing = true;
    return;
  }
  post({ type: 'events', target: t.id, batch, consumers: t.consumers() }, transfer);
}

/** A message was gathered for `t`: posted at the turn's end, or now when the batch is full. */
function gathered(t: Target): void {
  if (t.builder.full) flush(t);
  else if (!t.scheduled) {
    t.scheduled = true;
    setImmediate(() => flush(t));
  }
}

const settings = data.settings;
const shared: Target = {
  id: SHARED_TARGET,
  builder: new EventBatchBuilder(() => Atomics.load(control, ControlSlot.ATTRS) === 1),
  consumers: () => source.consumerCounts(),
  scheduled: false,
};

const nodeIdHeader = new RepeatedHeader(HEADER_NODE_ID);
const seqHeader = new NumberHeader(HEADER_SEQ);

function onShared(_filter: number, msg: Msg): void {
  const kind = kindOfMsg(msg);
  if (kind === undefined) {
    shared.builder.addUnknownSubject();
    gathered(shared);
    return;
  }
  shared.builder.addSequence(nodeIdHeader.read(msg), kind, seqHeader.read(msg));
  shared.builder.add(kind, msg.data, nowMicros());
  gathered(shared);
}

const source = new JetStreamSource(
  { connection: connectionOptions(settings.nats, settings.name, settings.servers), stream: settings.stream, filters: settings.filters, ...(data.resume !== undefined ? { resume: data.resume } : {}) },
  onShared,
  log,
  () => post({ type: 'status', status: source.status() }),
);

interface Replay {
  target: Target;
  feeds: OrderedFeed[];
  stopped: boolean;
}

const replays = new Map<number, Replay>();

function openReplay(msg: Extract<ToJetStreamThread, { type: 'openReplay' }>): void {
  const js = source.client;
  if (js === undefined) {
    post({ type: 'replayFailed', id: msg.id, message: 'the relay is not connected to NATS now' });
    return;
  }
  const slots = new Int32Array(msg.slots);
  /** Events sent to this replay (mod 2^32), for its room (replayRoom). */
  let sent = 0;
  const feeds: OrderedFeed[] = [];
  const replay: Replay = {
    target: { id: msg.id, builder: new EventBatchBuilder(() => msg.attrs), consumers: () => feeds.map((f) => ({ ...f.counts })), scheduled: false },
    feeds,
    stopped: false,
  };
  const pacing: FeedPacing = {
    room: () => replayRoom(slots, sent, feeds.length),
    waitForRoom: () => new Promise((resolve) => setTimeout(resolve, REPLAY_ROOM_POLL_MS)),
    wanted: () => !replay.stopped,
  };
  const onMessage = (m: Msg): void => {
    // A filter narrowed to the kind takes only its subjects; a filter that could not be
    // narrowed may deliver the others, which are not this stream's.
    if (replay.stopped || kindOfMsg(m) !== msg.kind) return;
    if (replay.target.builder.add(msg.kind, m.data, nowMicros())) sent = (sent + 1) | 0;
    gathered(replay.target);
  };
  for (let i = 0; i < msg.filters.length; i++) feeds.push(new OrderedFeed(js, source.stream, msg.filters[i], msg.starts[i], onMessage, pacing));
  replays.set(msg.id, replay);
  Promise.all(
    feeds.map(async (f) => {
      await f.open();
      await f.pulled;
    }),
  ).catch((err: unknown) => {
    if (replay.stopped) return;
    stopReplay(msg.id);
    post({ type: 'replayFailed', id: msg.id, message: err instanceof Error ? err.message : String(err) });
  });
}

function stopReplay(id: number): void {
  const replay = replays.get(id);
  if (replay === undefined) return;
  replays.delete(id);
  replay.stopped = true;
  for (const f of replay.feeds) f.stop();
}

port.on('message', (msg: ToJetStreamThread) => {
  switch (msg.type) {
    case 'openReplay':
      openReplay(msg);
      return;
    case 'stopReplay':
      stopReplay(msg.id);
      return;
    case 'close':
      for (const id of [...replays.keys()]) stopReplay(id);
      void source.close().finally(() => {
        flush(shared);
        post({ type: 'closed' });
      });
      return;
  }
});

source.start();
