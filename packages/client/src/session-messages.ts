/**
 * The message of the UNAUTHORIZED error that ends a server-sent-event subscription whose token
 * is about to expire: the client subscribes again with a fresh token (and its `lastEventId`),
 * as wsLink reconnects after the WebSocket's close 4000. Shared, so both sides say it one way.
 */
export const TOKEN_EXPIRED = "token expired: reconnect with a fresh token";
