/** The error codes of docs/protocol.md#error-codes. */
export const ErrorCode = {
    PermissionDenied: 4002,
    Validation: 4003,
    NotFound: 4004,
    Constraint: 4005,
    Internal: 4006,
    Unavailable: 4013,
    RateLimited: 4029,
};
/** Base class of every error the client rejects a promise with. */
export class ChatmuxError extends Error {
    name = 'ChatmuxError';
}
/**
 * ServerError is an error envelope the server sent in answer to a request
 * (docs/protocol.md#errors): the connection stays open. code is 4002-4006,
 * 4013 or 4029; code 0 with detail "invalid event type" is the bare-string
 * error for an event the server does not know.
 */
export class ServerError extends ChatmuxError {
    code;
    detail;
    eventType;
    name = 'ServerError';
    constructor(code, detail, eventType) {
        super(`${eventType ? eventType + ': ' : ''}${code ? code + ' ' : ''}${formatDetail(detail)}`);
        this.code = code;
        this.detail = detail;
        this.eventType = eventType;
    }
}
/** The connection closed before the request got its final answer; it may or may not have been handled. */
export class ConnectionLostError extends ChatmuxError {
    name = 'ConnectionLostError';
}
/** The request got no final answer within the request timeout. */
export class RequestTimeoutError extends ChatmuxError {
    name = 'RequestTimeoutError';
}
/** The client was closed (close()) or signed out before the request could be sent or answered. */
export class ClientClosedError extends ChatmuxError {
    name = 'ClientClosedError';
}
/**
 * ConnectionClosedError: the server ended the session with a normal closure
 * (1000, docs/protocol.md#close-codes), so the client stopped without
 * reconnecting. Requests waiting for the connection and whenConnected
 * reject with it, and so do the promises of unsent messages, which stay in
 * the outbox (and its storage): connect() starts the client again and sends
 * them. It is a ClientClosedError.
 */
export class ConnectionClosedError extends ClientClosedError {
    name = 'ConnectionClosedError';
}
/** sendMessage was refused because the outbox holds its maximum of unsent messages. */
export class OutboxFullError extends ChatmuxError {
    name = 'OutboxFullError';
}
/**
 * FrameRejectedError: the server cannot read the request's frame, so the
 * client never sends it (again). code 1009: the frame is larger than the
 * server's read limit, known beforehand (maxFrameBytes, or the limit a
 * 1009 close stated) or named by the server's 1009 close. code 1007: the
 * server closed the connection with 1007 (not valid UTF-8) on this frame.
 * A message of the outbox rejected so leaves the outbox ('sendFailed');
 * nothing was stored (docs/protocol.md#close-codes).
 */
export class FrameRejectedError extends ChatmuxError {
    code;
    eventType;
    name = 'FrameRejectedError';
    constructor(code, message, eventType) {
        super(`${eventType ? eventType + ': ' : ''}${message}`);
        this.code = code;
        this.eventType = eventType;
    }
}
/** formatDetail turns an error detail into one line of text. */
export function formatDetail(d) {
    if (typeof d === 'string')
        return d;
    if (Array.isArray(d))
        return d.join(' ');
    if (d && typeof d === 'object') {
        return Object.entries(d)
            .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(' ') : String(v)}`)
            .join('; ');
    }
    return String(d);
}
