// @chatmux/client: the official chatmux client for browsers and Node.js.
export { ChatClient, FENCE_EVENT } from './client.js';
export type {
  ChatClientOptions,
  ClientEvents,
  ClientStats,
  ConnectionState,
  RequestIdMode,
  RequestOptions,
  ResyncResult,
  SendOptions,
  StateChange,
  TokenSource,
} from './client.js';
export { backoffCeiling, backoffDelay, defaultBackoff } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export {
  ChatmuxError,
  ClientClosedError,
  ConnectionClosedError,
  ConnectionLostError,
  ErrorCode,
  FrameRejectedError,
  OutboxFullError,
  RequestTimeoutError,
  ServerError,
  formatDetail,
} from './errors.js';
export { MemoryOutboxStorage, WebStorageOutbox } from './outbox.js';
export { parseGoDuration, rateLimitHintMs } from './pacing.js';
export type { OutboxEntry, OutboxStorage, WebStorageLike } from './outbox.js';
export { BATCH_SUBPROTOCOL, decodeFrames } from './socket.js';
export type { WebSocketConstructor, WebSocketLike } from './socket.js';
export type * from './types.js';
