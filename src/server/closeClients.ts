/**
 * The client side of a shutdown, shared by `serve` and `relay`: stop offering new
 * events, let every stream drain until the deadline, then end each one. A stream that
 * drained ends OK; one still behind has what is left counted `shutdown_grace_expired`
 * and ends UNAVAILABLE with that count, so every client's summary accounts for every
 * event it was offered.
 */
import type { FanoutHub, Subscriber } from '../fanout';
import type { RunningServer } from './running';

/** How long streams ended at the deadline get to be read before their connections close. */
export const POST_GRACE_MS = 500;

/**
 * `upstreamDrained` is what must finish before the queues can (serve: the encoders);
 * it and the queues share the one deadline.
 */
export async function closeClients(hub: FanoutHub, server: RunningServer, deadline: number, upstreamDrained?: Promise<void>): Promise<void> {
  const within = (p: Promise<void>): Promise<void> =>
    Promise.race([p, new Promise<void>((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref())]);
  hub.beginShutdown();
  if (upstreamDrained !== undefined) await within(upstreamDrained);
  await within(hub.drainAll());
  const cutOff = new Map<Subscriber, string>();
  for (const sub of hub.openSubscribers()) {
    const queued = sub.expireGrace();
    if (queued > 0) cutOff.set(sub, `server shutting down: grace period expired with ${queued} events queued (counted shutdown_grace_expired)`);
  }
  server.endStreams((sub) => cutOff.get(sub));
  // The last writes and the trailers after them get at least POST_GRACE_MS to be sent.
  await server.shutdown(Math.max(POST_GRACE_MS, deadline - Date.now()));
  for (const sub of hub.all()) sub.abandonInFlight();
}
