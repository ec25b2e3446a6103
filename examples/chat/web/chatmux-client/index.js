// @chatmux/client: the official chatmux client for browsers and Node.js.
export { ChatClient, FENCE_EVENT } from './client.js';
export { backoffCeiling, backoffDelay, defaultBackoff } from './backoff.js';
export { ChatmuxError, ClientClosedError, ConnectionClosedError, ConnectionLostError, ErrorCode, FrameRejectedError, OutboxFullError, RequestTimeoutError, ServerError, formatDetail, } from './errors.js';
export { MemoryOutboxStorage, WebStorageOutbox } from './outbox.js';
export { parseGoDuration, rateLimitHintMs } from './pacing.js';
export { BATCH_SUBPROTOCOL, decodeFrames } from './socket.js';
