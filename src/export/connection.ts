/**
 * The NATS connection's options: servers from --export, credentials and TLS from files
 * only, and a reconnect policy that never gives up (a node's export outlives NATS
 * restarts; the export buffer covers the gap and counts what it cannot).
 */
import * as fs from 'node:fs';
import { credsAuthenticator, nkeyAuthenticator, tokenAuthenticator, usernamePasswordAuthenticator, type Authenticator, type NodeConnectionOptions } from '@nats-io/transport-node';
import { parseServers, readUserFile, type ExportConfig } from './options';

/**
 * 500 ms between attempts (NATS's default is 2 s): a restarted server is found within about
 * half a second, and a loopback refusal costs microseconds. The jitter spreads a cluster's
 * worth of nodes reconnecting at once.
 */
const RECONNECT_WAIT_MS = 500;
const RECONNECT_JITTER_MS = 250;
/** A server that stopped answering (stopped process, dead route) is left after 3 missed pings 10 s apart. */
const PING_INTERVAL_MS = 10_000;
const MAX_PINGS_OUT = 3;
/** A first connection (TCP, TLS, INFO/CONNECT) that takes longer is abandoned and tried again. */
const HANDSHAKE_TIMEOUT_MS = 5000;

/**
 * Authenticators read their file at every (re)connect, so credentials rotated on disk are
 * used from the next connection on without a restart.
 */
function authenticator(config: ExportConfig): Authenticator | undefined {
  if (config.exportCredsFile !== '') return credsAuthenticator(() => fs.readFileSync(config.exportCredsFile));
  if (config.exportNkeyFile !== '') return nkeyAuthenticator(() => new TextEncoder().encode(fs.readFileSync(config.exportNkeyFile, 'utf8').trim()));
  if (config.exportTokenFile !== '') return tokenAuthenticator(() => fs.readFileSync(config.exportTokenFile, 'utf8').trim());
  if (config.exportUserFile !== '') {
    return usernamePasswordAuthenticator(
      () => readUserFile(config.exportUserFile).user,
      () => readUserFile(config.exportUserFile).pass,
    );
  }
  return undefined;
}

/** `servers`: the export's by default; relay --from passes its own. */
export function connectionOptions(config: ExportConfig, name: string, servers: string[] = parseServers(config.export)): NodeConnectionOptions {
  const auth = authenticator(config);
  const wantsTls = config.exportTlsCaFile !== '' || config.exportTlsCertFile !== '' || servers.some((s) => s.startsWith('tls://'));
  return {
    servers,
    name,
    maxReconnectAttempts: -1,
    // The first connection is retried by the exporter's loop (exporter.ts), which can stop.
    waitOnFirstConnect: false,
    timeout: HANDSHAKE_TIMEOUT_MS,
    reconnectTimeWait: RECONNECT_WAIT_MS,
    reconnectJitter: RECONNECT_JITTER_MS,
    reconnectJitterTLS: RECONNECT_JITTER_MS,
    pingInterval: PING_INTERVAL_MS,
    maxPingOut: MAX_PINGS_OUT,
    ...(auth !== undefined ? { authenticator: auth } : {}),
    ...(wantsTls
      ? {
          tls: {
            ...(config.exportTlsCaFile !== '' ? { caFile: config.exportTlsCaFile } : {}),
            ...(config.exportTlsCertFile !== '' ? { certFile: config.exportTlsCertFile, keyFile: config.exportTlsKeyFile } : {}),
          },
        }
      : {}),
  };
}
