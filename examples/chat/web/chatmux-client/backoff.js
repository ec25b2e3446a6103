/** The defaults of BackoffOptions. */
export const defaultBackoff = { baseMs: 1000, capMs: 30000, slowConsumerMs: 5000 };
/** orDefault returns v when it is a number above 0, else def. */
function orDefault(v, def) {
    return typeof v === 'number' && v > 0 ? v : def;
}
/**
 * backoffCeiling returns the upper bound of the delay before retry number
 * attempt (0 for the first retry): min(cap, base * 2^attempt).
 */
export function backoffCeiling(attempt, opts = {}) {
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
export function backoffDelay(attempt, opts = {}, slowConsumer = false) {
    const random = opts.random ?? Math.random;
    const jitter = Math.floor(random() * backoffCeiling(attempt, opts));
    return slowConsumer ? orDefault(opts.slowConsumerMs, defaultBackoff.slowConsumerMs) + jitter : jitter;
}
