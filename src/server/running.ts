/** What a started server is to its owner (serve, relay): its addresses, its health, and the end of its streams. */
import type { Subscriber } from '../fanout';

/** Where a running server (serve, relay) is reached: gRPC, health and metrics, and each source that listens (serve). */
export interface ServerAddresses {
  grpc: string;
  health: string | undefined;
  metrics: string | undefined;
  sources: Record<string, string>;
}

export interface RunningServer {
  grpcAddress: string;
  healthAddress: string | undefined;
  /** Main-loop stalls the health port's thread saw (over mainLoopStallMs). */
  mainLoopStalls(): number;
  /** grpc.health.v1 status of feeder.LogService and of the server as a whole (""). */
  setServing(serving: boolean): void;
  /**
   * Ends every open Watch* stream, after what was written to it: with OK, or, where
   * `cutOff` gives a reason, with UNAVAILABLE and that reason.
   */
  endStreams(cutOff?: (sub: Subscriber) => string | undefined): void;
  /**
   * Closes the connections: first waits (within `timeoutMs`) for the streams endStreams
   * ended to send their status, then closes gracefully, forcing at `timeoutMs`.
   */
  shutdown(timeoutMs: number): Promise<void>;
}
