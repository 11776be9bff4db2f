/**
 * karmor's filters are Go regular expressions: RE2 syntax (inline flags such as `(?i)`
 * and `(?U)`, `\pL`, no backreferences or lookaround) and matching in time linear in the
 * input. They are compiled with re2js, the JavaScript port of RE2, both for the
 * server-side filters and for `armorfeed log`'s own, so a pattern means what it means to
 * karmor and none can backtrack: a JS RegExp such as `(.*.*)*x` spends seconds on a
 * 16-character namespace, re2js microseconds.
 */
import { RE2JS, RE2JSException } from 're2js';
import { ConfigError, FilterInvalidError, FilterTooComplexError } from '../errors';

/** What matching needs of a compiled pattern: an unanchored search, as Go's MatchString. */
export interface Matcher {
  test(value: string): boolean;
}

/**
 * Compiles `pattern` as Go's regexp package would (with `(?i)` in front when
 * `caseInsensitive`, as karmor does for namespace, operation and type). Throws a
 * SyntaxError with RE2's message, which is Go's wording, when it is not one.
 */
export function compileGoRegexp(pattern: string, caseInsensitive: boolean): RE2JS {
  try {
    return RE2JS.compile(pattern, caseInsensitive ? RE2JS.CASE_INSENSITIVE : 0);
  } catch (err) {
    if (err instanceof RE2JSException) throw new SyntaxError(err.message, { cause: err });
    throw err;
  }
}

/** Longest pattern a server-side filter accepts, in characters; karmor users write a few words. */
export const MAX_SERVER_PATTERN_LENGTH = 256;

/**
 * Largest compiled program a server-side filter accepts (RE2 instructions). Matching one
 * value costs about its length times this, on the main thread; counted repetitions blow
 * short patterns up (`[a-z]{1000}` alone is 1,000 instructions), while a 256-character
 * alternation of names stays near 300.
 */
export const MAX_SERVER_PROGRAM_SIZE = 2000;

/**
 * Compiles a client's server-side filter pattern (request metadata `key`), or throws a
 * FilterError saying why the server refuses it. `armorfeed log` runs the same check to
 * know which of its filters it must apply on its own side.
 */
export function compileServerFilter(key: string, pattern: string): Matcher {
  if (pattern.length > MAX_SERVER_PATTERN_LENGTH) {
    throw new FilterTooComplexError(`${key}: the pattern has ${pattern.length} characters, over the limit of ${MAX_SERVER_PATTERN_LENGTH}; shorten it, or filter on the client side`);
  }
  let re: RE2JS;
  try {
    re = compileGoRegexp(pattern, true);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new FilterInvalidError(`${key}: ${JSON.stringify(pattern)} is not a Go (RE2) regular expression: ${err.message}`);
  }
  const size = re.programSize();
  if (size > MAX_SERVER_PROGRAM_SIZE) {
    throw new FilterTooComplexError(`${key}: the pattern compiles to ${size} instructions, over the limit of ${MAX_SERVER_PROGRAM_SIZE} (large counted repetitions such as {1000} are the usual cause); simplify it, or filter on the client side`);
  }
  return re;
}

/**
 * Compiles a Go (RE2) pattern, as karmor does: inline flags such as `(?i)` anywhere,
 * matching in linear time (wire/goRegexp.ts). A bad pattern is a ConfigError naming the flag.
 */
export function compileGoRegex(flagName: string, pattern: string, caseInsensitive: boolean): Matcher {
  try {
    return compileGoRegexp(pattern, caseInsensitive);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new ConfigError(flagName, `${JSON.stringify(pattern)} is not a valid Go regular expression (${err.message})`);
  }
}
