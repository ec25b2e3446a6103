// The wire shapes of the chatmux chat protocol (docs/protocol.md#objects,
// docs/protocol.md#events, docs/protocol.md#dispatches).
export {};
