/**
 * Node options the broker runs with, for every launcher (bin/armorfeed.js's shebang,
 * `npm start`, and the tools that spawn `serve`: load/tune, bench, tests).
 *
 * `--max-semi-space-size=2`: the main thread's young generation at 2 MiB instead of V8's
 * 16 MiB. The main thread's garbage is short-lived (batch descriptors, queue entries,
 * write requests), so smaller, more frequent scavenges each pause it for less, and the
 * process keeps ~30 MB less RSS under load (bench/README.md). Worker threads set theirs
 * with `resourceLimits` where they are created.
 */
export const BROKER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
