/**
 * relay --from's ordered consumer (OrderedFeed) and what it reads of each message from the
 * protocol bytes (natsMsg.ts), against a real nats-server on loopback:
 *  - the byte reads agree with the client's own (JsMsg info, subject, headers) for every
 *    message, and the pinned client's messages are read from their bytes (a client upgrade
 *    that changes MsgImpl fails here, loudly, instead of quietly taking the slow path);
 *  - a Msg of another shape is read the public way with the same results;
 *  - a feed delivers a stream in order, exactly once, across its consumer being deleted
 *    under it (made again from the last stream sequence) and across a paced client's
 *    small room, then goes on with live messages.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { headers, MsgHdrsImpl, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { AckPolicy, jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { OrderedFeed, type FeedPacing, type JetStreamApi } from '../src/relay/jetstream';
import { kindOfMsg, kindOfSubject, NumberHeader, readDelivery, readsBytes, RepeatedHeader, type Delivery } from '../src/relay/natsMsg';
import { natsClient, NatsServer } from './helpers/nats';
import { waitUntil, withTimeout } from './helpers/wait';

const STREAM = 'FEEDTEST';
const N = 3000;

/** A Msg that is not nats-core's MsgImpl: only the public getters. */
function plainMsg(m: Msg): Msg {
  const h = m.headers;
  return { subject: m.subject, reply: m.reply, sid: m.sid, data: m.data, headers: h, respond: () => false, size: () => 0, json: () => undefined, string: () => '' } as unknown as Msg;
}

describe('relay --from - ordered feed and byte reads of JetStream messages', () => {
  let server: NatsServer;
  let nc: NatsConnection;
  let jsm: JetStreamManager;

  before(async () => {
    server = await NatsServer.start();
    nc = await natsClient(server.url);
    jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: STREAM, subjects: ['ft.>'] });
    const js = jetstream(nc);
    const acks: Promise<unknown>[] = [];
    for (let i = 1; i <= N; i++) {
      const h = headers();
      h.set('Armorfeed-Node-Id', i % 2 === 0 ? 'node-a@1-ab' : 'nöde-b@2-cd');
      if (i % 7 !== 0) h.set('Armorfeed-Seq', String(i));
      const kind = i % 3 === 0 ? 'alerts' : i % 3 === 1 ? 'logs' : 'messages';
      acks.push(js.publish(`ft.c1.n${i % 2}.${kind}`, new Uint8Array([i & 0xff, 1, 2, 3]), { headers: h }));
    }
    await withTimeout(Promise.all(acks), 30_000, 'publishing the test stream');
  });

  after(async () => {
    await nc?.close();
    await server?.stop();
  });

  test('byte reads agree with the client: delivery, kind, headers; a plain Msg reads the same', async () => {
    const c = await jsm.consumers.add(STREAM, { ack_policy: AckPolicy.None, filter_subject: 'ft.>' });
    const consumer = await jetstream(nc).consumers.get(STREAM, c.name);
    const batch = await consumer.fetch({ max_messages: 500, expires: 5000 });
    const nodeId = new RepeatedHeader('Armorfeed-Node-Id');
    const seq = new NumberHeader('Armorfeed-Seq');
    const absent = new NumberHeader('Armorfeed-Absent');
    const plainNodeId = new RepeatedHeader('Armorfeed-Node-Id');
    const plainSeq = new NumberHeader('Armorfeed-Seq');
    const d: Delivery = { streamSeq: 0, deliverySeq: 0, delivered: 0, pending: 0 };
    const p: Delivery = { ...d };
    let n = 0;
    for await (const jm of batch) {
      const m = (jm as unknown as { msg: Msg }).msg;
      assert.ok(readsBytes(m), 'the pinned client\'s messages are read from their bytes (nats-core MsgImpl changed?)');
      assert.ok(readDelivery(m, d));
      assert.deepEqual(d, { streamSeq: jm.info.streamSequence, deliverySeq: jm.info.deliverySequence, delivered: jm.info.deliveryCount, pending: jm.info.pending });
      assert.equal(kindOfMsg(m), kindOfSubject(jm.subject));
      assert.equal(nodeId.read(m), jm.headers?.get('Armorfeed-Node-Id'));
      const want = jm.headers?.get('Armorfeed-Seq') ?? '';
      if (want === '') assert.ok(Number.isNaN(seq.read(m)));
      else assert.equal(seq.read(m), Number(want));
      assert.ok(Number.isNaN(absent.read(m)));
      const plain = plainMsg(m);
      assert.ok(!readsBytes(plain));
      assert.ok(readDelivery(plain, p));
      assert.deepEqual(p, d);
      assert.equal(kindOfMsg(plain), kindOfMsg(m));
      assert.equal(plainNodeId.read(plain), nodeId.read(m));
      assert.equal(Number.isNaN(plainSeq.read(plain)) || plainSeq.read(plain) === 0, Number.isNaN(seq.read(m)));
      n++;
    }
    assert.equal(n, 500);
    await jsm.consumers.delete(STREAM, c.name);
  });

  test('byte reads of hostile headers and subjects: no partial key match, odd values, long blocks; the same as the client\'s own decode', () => {
    /** A message shaped as nats-core's MsgImpl, and the same message with the client's own header decode. */
    const pair = (subject: string, headerLines: string[], payload = 'x'): [Msg, Msg] => {
      const block = Buffer.from(`NATS/1.0\r\n${headerLines.map((l) => `${l}\r\n`).join('')}\r\n`, 'utf8');
      const rdata = Buffer.concat([block, Buffer.from(payload)]);
      const raw = { _msg: { subject: Buffer.from(subject), reply: Buffer.from(''), hdr: block.length, size: rdata.length }, _rdata: rdata } as unknown as Msg;
      const plain = { subject, reply: '', headers: MsgHdrsImpl.decode(block), data: rdata.subarray(block.length) } as unknown as Msg;
      return [raw, plain];
    };
    const cases: { subject: string; lines: string[] }[] = [
      { subject: 'k.c.n.logs', lines: ['Armorfeed-Seqx: 5', 'Armorfeed-Node-Idx: evil'] },
      { subject: 'k.c.n.logs', lines: ['Armorfeed-Seq:   42  ', 'Armorfeed-Node-Id:  node-a '] },
      { subject: 'k.c.n.alerts', lines: ['Armorfeed-Seq: 12a', 'Armorfeed-Node-Id: nöde-ü'] },
      { subject: 'k.c.n.alerts', lines: [`Armorfeed-Seq: ${'9'.repeat(400)}`, 'Armorfeed-Node-Id: node-b'] },
      { subject: 'k.c.n.messages', lines: [`X-Pad: ${'p'.repeat(100_000)}`, 'Armorfeed-Seq: 7', 'Armorfeed-Node-Id: node-a'] },
      { subject: 'k.c.n.constructor', lines: ['Armorfeed-Seq: -3'] },
      { subject: 'alerts', lines: [] },
    ];
    const seq = new NumberHeader('Armorfeed-Seq');
    const nodeId = new RepeatedHeader('Armorfeed-Node-Id');
    const plainSeq = new NumberHeader('Armorfeed-Seq');
    const plainNodeId = new RepeatedHeader('Armorfeed-Node-Id');
    for (const c of cases) {
      const [raw, plain] = pair(c.subject, c.lines);
      assert.ok(readsBytes(raw) && !readsBytes(plain));
      const what = `${c.subject} ${c.lines.join(' | ').slice(0, 60)}`;
      assert.equal(kindOfMsg(raw), kindOfMsg(plain), what);
      assert.equal(nodeId.read(raw), plainNodeId.read(plain), what);
      const a = seq.read(raw);
      const b = plainSeq.read(plain);
      // Absent or unreadable is no sequence either way (NaN here, 0 from the client's '' ): never a valid one.
      if (Number.isSafeInteger(b) && b >= 1) assert.equal(a, b, what);
      else assert.ok(!(Number.isSafeInteger(a) && a >= 1), `${what}: ${a}`);
    }
    assert.equal(kindOfMsg(pair('k.c.n.constructor', [])[0]), undefined);
    assert.equal(kindOfMsg(pair('alerts', [])[0]), 'alerts');
    // The cached node id is never served for other bytes of the same length.
    assert.equal(nodeId.read(pair('k.c.n.logs', ['Armorfeed-Node-Id: node-a'])[0]), 'node-a');
    assert.equal(nodeId.read(pair('k.c.n.logs', ['Armorfeed-Node-Id: node-b'])[0]), 'node-b');
  });

  test('readDelivery - both reply forms; anything else is not a delivery', () => {
    const d: Delivery = { streamSeq: 0, deliverySeq: 0, delivered: 0, pending: 0 };
    const msg = (reply: string): Msg => ({ subject: 'x.alerts', reply, headers: undefined, data: new Uint8Array(0) }) as unknown as Msg;
    assert.ok(readDelivery(msg('$JS.ACK.S.C.2.41.7.1733000000000000000.9'), d));
    assert.deepEqual(d, { delivered: 2, streamSeq: 41, deliverySeq: 7, pending: 9 });
    assert.ok(readDelivery(msg('$JS.ACK.dom.ACCHASH.S.C.1.42.8.1733000000000000000.0.rand'), d));
    assert.deepEqual(d, { delivered: 1, streamSeq: 42, deliverySeq: 8, pending: 0 });
    assert.ok(!readDelivery(msg(''), d));
    assert.ok(!readDelivery(msg('_INBOX.abc.1'), d));
    assert.ok(!readDelivery(msg('$JS.ACK.S.C.x.41.7.1.9'), d));
    assert.ok(!readDelivery(msg('$JS.ACK.S.C.1.2'), d));
    assert.equal(kindOfMsg(msg('')), 'alerts');
    assert.equal(kindOfMsg({ subject: 'x.other' } as unknown as Msg), undefined);
  });

  const api = (): JetStreamApi => ({ nc, jsm });

  test('unpaced: the whole stream in order, exactly once; its consumer deleted under it is made again after the last message', async () => {
    const seqs: number[] = [];
    const feed: OrderedFeed = new OrderedFeed(api(), STREAM, 'ft.>', { at: 'seq', seq: 1 }, (m) => {
      const d: Delivery = { streamSeq: 0, deliverySeq: 0, delivered: 0, pending: 0 };
      assert.ok(readDelivery(m, d));
      seqs.push(d.streamSeq);
    });
    await feed.open();
    try {
      await waitUntil('the feed', () => seqs.length >= N, 30_000, () => `${seqs.length} of ${N} delivered`);
      assert.equal(feed.counts.recreated, 0);
      const ours = (await jsm.consumers.list(STREAM).next()).filter((c) => c.name.startsWith('af_'));
      assert.equal(ours.length, 1, 'one consumer of the feed\'s on the server');
      await jsm.consumers.delete(STREAM, ours[0].name);
      const js = jetstream(nc);
      const more: number[] = [];
      for (let i = 0; i < 10; i++) more.push((await js.publish('ft.c1.n8.logs', new Uint8Array([i]))).seq);
      await waitUntil('the feed', () => seqs.length >= N + more.length, 30_000, () => `${seqs.length} of ${N + more.length} delivered, recreated ${feed.counts.recreated}`);
      assert.deepEqual(seqs, [...Array.from({ length: N }, (_, i) => i + 1), ...more]);
      assert.ok(feed.counts.recreated >= 1, 'the consumer was made again after it was deleted');
      assert.equal(feed.counts.delivered, N + more.length);
      assert.equal(feed.counts.lastStreamSeq, more[more.length - 1]);
    } finally {
      feed.stop();
    }
  });

  test('a consumer deleted again right after it was made again is made again no sooner than a second later', async () => {
    const seqs: number[] = [];
    const remadeAt: number[] = [];
    const feed = new OrderedFeed(api(), STREAM, 'ft.>', { at: 'seq', seq: N + 1 }, (m) => {
      const d: Delivery = { streamSeq: 0, deliverySeq: 0, delivered: 0, pending: 0 };
      assert.ok(readDelivery(m, d));
      seqs.push(d.streamSeq);
    }, undefined, undefined, () => remadeAt.push(performance.now()));
    await feed.open();
    const js = jetstream(nc);
    const deleteOurs = async (): Promise<void> => {
      for (const c of (await jsm.consumers.list(STREAM).next()).filter((c) => c.name.startsWith(feed.consumerPrefix))) await jsm.consumers.delete(STREAM, c.name);
    };
    try {
      const first = (await js.publish('ft.c1.n7.logs', new Uint8Array([1]))).seq;
      await waitUntil('the feed', () => seqs.includes(first), 10_000, () => JSON.stringify(seqs));
      await deleteOurs();
      const second = (await js.publish('ft.c1.n7.logs', new Uint8Array([2]))).seq;
      await waitUntil('the feed', () => seqs.includes(second), 10_000, () => `recreated ${feed.counts.recreated}`);
      await deleteOurs();
      const third = (await js.publish('ft.c1.n7.logs', new Uint8Array([3]))).seq;
      await waitUntil('the feed', () => seqs.includes(third), 10_000, () => `recreated ${feed.counts.recreated}`);
      const thirdAt = performance.now();
      assert.equal(feed.counts.recreated, 2);
      assert.ok(thirdAt - remadeAt[0] >= 950, `the second remake came ${Math.round(thirdAt - remadeAt[0])} ms after the first`);
      // Every message from its start to the last, once each, in order, across both remakes.
      assert.deepEqual(seqs, Array.from({ length: third - N }, (_, i) => N + 1 + i));
    } finally {
      feed.stop();
    }
  });

  test('paced: never more than the room, from a time, then live messages', async () => {
    let room = 0;
    let sent = 0;
    let wanted = true;
    const pacing: FeedPacing = { room: () => room - sent, waitForRoom: () => new Promise((resolve) => setTimeout(resolve, 5)), wanted: () => wanted };
    const seqs: number[] = [];
    const feed = new OrderedFeed(api(), STREAM, 'ft.*.*.alerts', { at: 'time', time: new Date(Date.now() - 3_600_000).toISOString() }, (m) => {
      const d: Delivery = { streamSeq: 0, deliverySeq: 0, delivered: 0, pending: 0 };
      assert.ok(readDelivery(m, d));
      assert.equal(kindOfMsg(m), 'alerts');
      seqs.push(d.streamSeq);
      sent++;
    }, pacing);
    await feed.open();
    try {
      for (const step of [100, 250, 400]) {
        room = step;
        await waitUntil('the feed', () => sent >= step, 10_000, () => `${sent} delivered, room ${room}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
        assert.equal(sent, step, 'no more than the room');
      }
      room = N;
      const alerts = Math.floor(N / 3); // the 10 messages the test before added are logs
      await waitUntil('the feed', () => sent >= alerts, 20_000, () => `${sent} of ${alerts}`);
      const live = await jetstream(nc).publish('ft.c1.n9.alerts', new Uint8Array([9]));
      await waitUntil('the feed', () => seqs.includes(live.seq), 10_000, () => `live message ${live.seq} not delivered (last ${seqs[seqs.length - 1]})`);
      assert.deepEqual(seqs, [...Array.from({ length: alerts }, (_, i) => 3 * (i + 1)), live.seq]);
      wanted = false;
      await withTimeout(feed.pulled, 5000, 'the paced feed ending once its client is gone');
    } finally {
      feed.stop();
    }
  });
});
