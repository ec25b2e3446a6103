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
/** sendMessage was refused because the outbox holds its maximum of unsent messages. */
export class OutboxFullError extends ChatmuxError {
    name = 'OutboxFullError';
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
