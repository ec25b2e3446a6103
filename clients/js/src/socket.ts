// The transport: the WebSocket interface the client needs, the framing
// (one JSON object per message, or with chatmux.batch.v1 an array of them)
// and the client envelope.

/** The WebSocket subprotocol of batched delivery (docs/protocol.md#batched-delivery). */
export const BATCH_SUBPROTOCOL = 'chatmux.batch.v1';

/**
 * The part of the WebSocket API the client uses: the browser's WebSocket
 * and the ws package's both have it.
 */
export interface WebSocketLike {
  readonly readyState: number;
  readonly protocol: string;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  /** ws (Node.js) only: drop the TCP connection without a close handshake. */
  terminate?(): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}

/** A WebSocket constructor: globalThis.WebSocket in browsers, the ws package's WebSocket in Node.js. */
export type WebSocketConstructor = new (url: string, protocols?: string | string[]) => WebSocketLike;

/** The client envelope (docs/protocol.md#client-envelope) with its request_id (docs/protocol.md#request-id). */
export function encodeEnvelope(eventType: string, data: unknown, requestId?: string): string {
  const env: Record<string, unknown> = { event_type: eventType };
  if (data !== undefined) env.data = data;
  if (requestId !== undefined) env.request_id = requestId;
  return JSON.stringify(env);
}

let decoder: TextDecoder | undefined;

/**
 * decodeFrames parses one WebSocket message into the frames it carries: one
 * object, or with batched delivery a JSON array of objects, in order.
 * It throws a SyntaxError on a message that is not JSON.
 */
export function decodeFrames(data: unknown): Record<string, unknown>[] {
  let text: string;
  if (typeof data === 'string') {
    text = data;
  } else if (data instanceof ArrayBuffer || ArrayBuffer.isView(data)) {
    decoder ??= new TextDecoder();
    text = decoder.decode(data as ArrayBuffer | ArrayBufferView);
  } else {
    text = String(data);
  }
  const v: unknown = JSON.parse(text);
  const list = Array.isArray(v) ? v : [v];
  return list.filter((f): f is Record<string, unknown> => !!f && typeof f === 'object' && !Array.isArray(f));
}

/** withToken returns url with the token as its query parameter param (when token is not empty). */
export function withToken(url: string, param: string, token: string | undefined): string {
  if (!token) return url;
  const u = new URL(url);
  u.searchParams.set(param, token);
  return u.toString();
}

/** utf8Length returns the number of bytes of s in UTF-8, as a WebSocket text frame carries it. */
export function utf8Length(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i++;
    } else n += 3;
  }
  return n;
}

/**
 * closeLimit reads the read limit a 1009 close reason states ("message
 * over 65536 bytes"), or undefined.
 */
export function closeLimit(reason: string): number | undefined {
  const m = /over (\d+) bytes/.exec(reason);
  const n = m ? Number(m[1]) : NaN;
  return n > 0 ? n : undefined;
}
