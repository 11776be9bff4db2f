/**
 * One error class per failure a user can act on, each with a stable `code` that the
 * class fixes itself (undici's lib/core/errors.js); every code is in ErrorCode.
 * Messages say what was wrong and what to do; the code is what scripts match on.
 * ArmorfeedError's own constructor takes a code only to carry one across a thread
 * boundary (an ingest thread's failure, re-raised on the main thread).
 */
export type ErrorCode =
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_UNKNOWN_KEY'
  | 'ERR_CONFIG_FILE'
  | 'ERR_SOCKET_IN_USE'
  | 'ERR_INGEST_THREAD'
  | 'ERR_CONFIG_TLS'
  | 'ERR_INGEST_TOO_MANY_CONNECTIONS'
  | 'ERR_INGEST_FRAME_TIMEOUT'
  | 'ERR_INGEST_IDLE_TIMEOUT'
  | 'ERR_INGEST_BUFFER_CAP'
  | 'ERR_INPUT_MALFORMED_FRAME'
  | 'ERR_INPUT_OVERSIZED'
  | 'ERR_INPUT_INVALID_JSON'
  | 'ERR_INPUT_WRONG_TYPE'
  | 'ERR_INPUT_UNKNOWN_FIELD'
  | 'ERR_INPUT_UNKNOWN_TYPE'
  | 'ERR_INPUT_INVALID_UTF8'
  | 'ERR_INPUT_NOT_A_MAP'
  | 'ERR_INPUT_TOO_DEEP'
  | 'ERR_INPUT_OUT_OF_RANGE'
  | 'ERR_INPUT_TRUNCATED'
  | 'ERR_INPUT_DISCARDED'
  | 'ERR_FILTER_INVALID'
  | 'ERR_FILTER_TOO_COMPLEX'
  | 'ERR_OUTPUT_OPEN'
  | 'ERR_HEALTH_MISMATCH'
  | 'ERR_FEEDER_UNREACHABLE'
  | 'ERR_STREAM_BROKEN'
  | 'ERR_FEEDER_CLOSED'
  | 'ERR_EXPORT_UNREACHABLE'
  | 'ERR_EXPORT_STREAM_MISMATCH'
  | 'ERR_EXPORT_STREAM'
  | 'ERR_EXPORT_CHECK_FAILED'
  | 'ERR_REPLAY_INVALID'
  | 'ERR_REPLAY_LIMIT'
  | 'ERR_REPLAY_UNAVAILABLE'
  | 'ERR_LOAD_BROKER_START'
  | 'ERR_LOAD_WIRE_FORMAT'
  | 'ERR_GRPC_FRAMING'
  | 'ERR_GRPC_CALL';

export class ArmorfeedError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A flag, environment variable or config-file key is wrong. `key` names it. */
export class ConfigError extends ArmorfeedError {
  readonly key: string;
  constructor(key: string, message: string, code: 'ERR_CONFIG_INVALID' | 'ERR_CONFIG_FILE' | 'ERR_CONFIG_UNKNOWN_KEY' | 'ERR_CONFIG_TLS' = 'ERR_CONFIG_INVALID') {
    super(code, `${key}: ${message}`);
    this.key = key;
  }
}

/** The config file (`config`) cannot be read, or is not a YAML map. */
export class ConfigFileError extends ConfigError {
  constructor(message: string) {
    super('config', message, 'ERR_CONFIG_FILE');
  }
}

/** A config-file key or option name that armorfeed does not know. */
export class UnknownConfigKeyError extends ConfigError {
  constructor(key: string, message: string) {
    super(key, message, 'ERR_CONFIG_UNKNOWN_KEY');
  }
}

/** The Unix socket path is taken by another process that is listening on it. */
export class SocketInUseError extends ArmorfeedError {
  constructor(message: string) {
    super('ERR_SOCKET_IN_USE', message);
  }
}

/** An ingest thread exited before its source was ready. */
export class IngestThreadError extends ArmorfeedError {
  constructor(message: string) {
    super('ERR_INGEST_THREAD', message);
  }
}

/** push() after close(). */
export class FeederClosedError extends ArmorfeedError {
  constructor(message: string) {
    super('ERR_FEEDER_CLOSED', message);
  }
}

/**
 * A TLS file under tlsCertPath is missing, unreadable or not what it should be (a PEM
 * certificate, a key that matches it, a CA). `key` names the option, `file` the path.
 */
export class TlsMaterialError extends ConfigError {
  readonly file: string;
  constructor(key: string, file: string, message: string) {
    super(key, `${file}: ${message}`, 'ERR_CONFIG_TLS');
    this.file = file;
  }
}

/**
 * An event from a source could not be accepted; counted as malformed_input with its
 * code's reason (inputReason). The code is the reason, so it is the caller's to give,
 * from the input codes only.
 */
export class InputError extends ArmorfeedError {
  declare readonly code: InputErrorCode;
  constructor(code: InputErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * A client's server-side filter pattern (request metadata) was refused. The stream ends
 * with INVALID_ARGUMENT. Thrown as one of the two below.
 */
export abstract class FilterError extends ArmorfeedError {}

/** Not a Go (RE2) regular expression. */
export class FilterInvalidError extends FilterError {
  constructor(message: string) {
    super('ERR_FILTER_INVALID', message);
  }
}

/** Over the size limits (pattern length, compiled program). */
export class FilterTooComplexError extends FilterError {
  constructor(message: string) {
    super('ERR_FILTER_TOO_COMPLEX', message);
  }
}

/** The output named by logPath (or `armorfeed log`'s file) could not be opened. */
export class OutputError extends ArmorfeedError {
  constructor(message: string) {
    super('ERR_OUTPUT_OPEN', message);
  }
}

/** The server did not echo the HealthCheck nonce. */
export class HealthMismatchError extends ArmorfeedError {
  constructor(sent: number, got: number) {
    super('ERR_HEALTH_MISMATCH', `HealthCheck returned ${got} for nonce ${sent}: the peer is not a KubeArmor feeder`);
  }
}

/**
 * --export: no NATS server of the list answered (export-check; `serve` keeps trying instead).
 * `servers` are the URLs tried.
 */
export class ExportUnreachableError extends ArmorfeedError {
  readonly servers: string;
  constructor(servers: string, why: string) {
    super('ERR_EXPORT_UNREACHABLE', `cannot connect to NATS at ${servers}: ${why}; check --export, the credential and TLS files, and that nats-server runs with -js`);
    this.servers = servers;
  }
}

/**
 * --export: the stream named by exportStream exists but does not take armorfeed's
 * subjects (`<prefix>.>`). armorfeed uses an existing stream as it is and never edits it.
 */
export class ExportStreamMismatchError extends ArmorfeedError {
  constructor(stream: string, has: readonly string[], wants: string) {
    super(
      'ERR_EXPORT_STREAM_MISMATCH',
      `JetStream stream ${stream} has subjects ${JSON.stringify(has)}, which do not cover ${wants}: add ${wants} to the stream, or choose another --exportStream or --exportSubjectPrefix`,
    );
  }
}

/** --export: the stream could not be looked up or created (JetStream disabled, overlapping subjects, limits, permissions). */
export class ExportStreamError extends ArmorfeedError {
  constructor(stream: string, why: string) {
    super('ERR_EXPORT_STREAM', `JetStream stream ${stream}: ${why}`);
  }
}

/** export-check: the test event was not acknowledged, or did not read back as sent. */
export class ExportCheckError extends ArmorfeedError {
  constructor(why: string) {
    super('ERR_EXPORT_CHECK_FAILED', why);
  }
}

/**
 * relay --from: a client's replay request (x-armorfeed-since, x-armorfeed-after-seq) was
 * refused. ERR_REPLAY_INVALID: the value cannot be read (the stream ends INVALID_ARGUMENT);
 * ERR_REPLAY_LIMIT: relayMaxReplays clients replay already (RESOURCE_EXHAUSTED);
 * ERR_REPLAY_UNAVAILABLE: the relay cannot reach JetStream now (UNAVAILABLE).
 */
export type ReplayErrorCode = 'ERR_REPLAY_INVALID' | 'ERR_REPLAY_LIMIT' | 'ERR_REPLAY_UNAVAILABLE';

export class ReplayError extends ArmorfeedError {
  declare readonly code: ReplayErrorCode;
  constructor(code: ReplayErrorCode, message: string) {
    super(code, message);
  }
}

/**
 * Input-error codes as the `reason` label of malformed_input drops. The order is also the
 * order of the per-reason counters in a ring's header: append only.
 */
export const inputReason = {
  ERR_INPUT_MALFORMED_FRAME: 'malformed_frame',
  ERR_INPUT_OVERSIZED: 'oversized',
  ERR_INPUT_INVALID_JSON: 'invalid_json',
  ERR_INPUT_WRONG_TYPE: 'wrong_type',
  ERR_INPUT_UNKNOWN_FIELD: 'unknown_field',
  ERR_INPUT_UNKNOWN_TYPE: 'unknown_type',
  ERR_INPUT_INVALID_UTF8: 'invalid_utf8',
  ERR_INPUT_NOT_A_MAP: 'not_a_map',
  ERR_INPUT_TOO_DEEP: 'too_deep',
  ERR_INPUT_OUT_OF_RANGE: 'out_of_range',
  // A connection closed in the middle of a frame: the part received is counted once.
  ERR_INPUT_TRUNCATED: 'truncated',
  // Frames received after the one that made armorfeed hang up on their peer.
  ERR_INPUT_DISCARDED: 'discarded',
} as const;

export type InputErrorCode = keyof typeof inputReason;
export type InputReason = (typeof inputReason)[InputErrorCode];

/** Reasons in counter order (index = counter slot). */
export const inputReasons: readonly InputReason[] = Object.values(inputReason);

/** The counter slot of an input error's reason (ring header, errors.ts order). */
export function inputReasonSlot(code: InputErrorCode): number {
  return inputReasons.indexOf(inputReason[code]);
}
