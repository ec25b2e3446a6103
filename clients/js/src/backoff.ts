/**
 * Reconnect delays (docs/protocol.md#close-codes). The zero value of every
 * field is its default: a field that is absent, 0, negative or NaN takes
 * it, so no setting makes the client retry without waiting.
 */
export interface BackoffOptions {
  /** The first retry's upper bound, in ms (default 1000). */
  baseMs?: number;
  /** The largest upper bound, in ms (default 30000). */
  capMs?: number;
  /** The fixed part of the delay after a 4008 "slow consumer" close, in ms (default 5000). */
  slowConsumerMs?: number;
  /** A source of uniform numbers in [0, 1) (default Math.random); tests pass their own. */
  random?: () => number;
}

/** The defaults of BackoffOptions. */
export const defaultBackoff = { baseMs: 1000, capMs: 30000, slowConsumerMs: 5000 } as const;

/** orDefault returns v when it is a number above 0, else def. */
function orDefault(v: number | undefined, def: number): number {
  return typeof v === 'number' && v > 0 ? v : def;
}

/**
 * backoffCeiling returns the upper bound of the delay before retry number
 * attempt (0 for the first retry): min(cap, base * 2^attempt).
 */
export function backoffCeiling(attempt: number, opts: BackoffOptions = {}): number {
  const base = orDefault(opts.baseMs, defaultBackoff.baseMs);
  const cap = orDefault(opts.capMs, defaultBackoff.capMs);
  // 2^attempt overflows to Infinity for large attempts; min() keeps the cap.
  return Math.min(cap, base * Math.pow(2, Math.max(0, attempt)));
}

/**
 * backoffDelay returns the delay before retry number attempt: "full jitter",
 * a uniform random delay in [0, min(cap, base * 2^attempt)). After a 4008
 * close (slowConsumer) the delay is slowConsumerMs plus that, so a client
 * that could not keep up waits at least slowConsumerMs.
 */
export function backoffDelay(attempt: number, opts: BackoffOptions = {}, slowConsumer = false): number {
  const random = opts.random ?? Math.random;
  const jitter = Math.floor(random() * backoffCeiling(attempt, opts));
  return slowConsumer ? orDefault(opts.slowConsumerMs, defaultBackoff.slowConsumerMs) + jitter : jitter;
}
