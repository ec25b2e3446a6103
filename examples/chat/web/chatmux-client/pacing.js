// Pacing of the outbox's replay against the server's per-user send limit
// (docs/protocol.md#rate-limits).
import { backoffDelay } from './backoff.js';
const goUnits = { ns: 1e-6, us: 1e-3, µs: 1e-3, μs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
/**
 * parseGoDuration reads a duration as Go prints it ("200ms", "20s",
 * "1m0s", "1h30m0s", "1.5s") and returns it in ms, or undefined when s is
 * not one.
 */
export function parseGoDuration(s) {
    const part = /(\d+(?:\.\d+)?)(ns|us|µs|μs|ms|s|m|h)/y;
    let ms = 0;
    let at = 0;
    while (at < s.length) {
        part.lastIndex = at;
        const m = part.exec(s);
        if (!m)
            return undefined;
        ms += Number(m[1]) * goUnits[m[2]];
        at = part.lastIndex;
    }
    return at > 0 ? ms : undefined;
}
/**
 * rateLimitHintMs reads the retry hint of a 4029 error: the limit its
 * detail states, "Rate limit exceeded: 100 events per 20s for
 * message.send." (docs/protocol.md#rate-limits), lets one event through
 * every 20s / 100 = 200 ms once its burst is spent. It returns that
 * interval in ms, or undefined when the detail states no limit.
 */
export function rateLimitHintMs(detail) {
    if (typeof detail !== 'string')
        return undefined;
    const m = /(\d+) events? per ([0-9.a-zµμ]+)/.exec(detail);
    if (!m)
        return undefined;
    const events = Number(m[1]);
    const per = parseGoDuration(m[2].replace(/\.$/, ''));
    if (!(events > 0) || per === undefined || !(per > 0))
        return undefined;
    return per / events;
}
/**
 * ReplayPacer paces the messages the outbox sends again (after a
 * reconnect, from storage, or after an answer that asked for a retry)
 * once the server has said 4029: they go one at a time, no faster than the
 * rate the server stated, after a hold that grows while 4029s keep coming.
 * Until the first 4029 they go as fast as maxSendsInFlight allows; once
 * no replayed message is left the pacer is reset.
 *
 * Each send takes a ticket; a 4029 to a send whose ticket predates the
 * last 4029 is one the hold already covers, so a window of sends refused
 * together counts once.
 */
export class ReplayPacer {
    backoff;
    now;
    epoch = 0;
    limited = false;
    paceMs = 0;
    holdUntil = 0;
    attempts = 0;
    constructor(backoff, now = Date.now) {
        this.backoff = backoff;
        this.now = now;
    }
    /** Whether a 4029 was seen since the last reset. */
    get isLimited() {
        return this.limited;
    }
    /**
     * wait tells whether a replayed send may go now, given how many replayed
     * sends are in flight: 0 yes, a positive number of ms to wait, or -1 to
     * wait for the answer of the one in flight.
     */
    wait(inflight) {
        if (!this.limited)
            return 0;
        const left = this.holdUntil - this.now();
        if (left > 0)
            return left;
        return inflight > 0 ? -1 : 0;
    }
    /** current is the ticket of a send that is not paced (a first send): a 4029 to it starts a hold. */
    get current() {
        return this.epoch;
    }
    /** ticket is called for each replayed send as it goes out; keep the ticket for rateLimited. */
    ticket() {
        if (this.limited && this.paceMs > 0)
            this.holdUntil = Math.max(this.holdUntil, this.now() + this.paceMs);
        return this.epoch;
    }
    /**
     * rateLimited records a 4029 to the send with ticket and returns the ms
     * until replayed sends go again: the interval the detail states (when it
     * states one) plus full jitter that doubles with each 4029 in a row, or
     * the client's reconnect backoff when it states none.
     */
    rateLimited(ticket, detail) {
        const now = this.now();
        if (ticket !== this.epoch)
            return Math.max(0, this.holdUntil - now);
        this.epoch++;
        const hint = rateLimitHintMs(detail);
        this.limited = true;
        this.paceMs = hint ?? 0;
        const delay = hint !== undefined
            ? Math.ceil(hint) + backoffDelay(this.attempts, { ...this.backoff, baseMs: Math.max(1, Math.ceil(hint)) })
            : backoffDelay(this.attempts, this.backoff);
        this.attempts++;
        this.holdUntil = now + delay;
        return delay;
    }
    /** succeeded records a replayed send that was stored: the next 4029 starts the backoff afresh. */
    succeeded() {
        this.attempts = 0;
    }
    /** reset forgets everything: no replayed message is left. */
    reset() {
        this.limited = false;
        this.paceMs = 0;
        this.holdUntil = 0;
        this.attempts = 0;
    }
}
