/**
 * The shapes of socket addresses and of bytes to send: types only, shared by
 * socket.ts, msg.ts and resolver.ts (so none of them imports another for them).
 *
 * @module
 */

/** An IPv4 address: `['127.0.0.1', 8080]`. Hosts are numeric: resolve names first. */
export type IPv4Address = [host: string, port: number];
/** An IPv6 address: `['::1', 8080, flowinfo?, scopeId?]`. */
export type IPv6Address = [host: string, port: number, flowinfo?: number, scopeId?: number];
/** A Unix socket path; a leading `'\0'` names the abstract namespace; `''` is unnamed. */
export type UnixAddress = string;
/** Any address a {@link Socket} takes or returns. */
export type SocketAddress = IPv4Address | IPv6Address | UnixAddress;
/** Bytes to send: a Buffer or any typed array / DataView; a string is sent as UTF-8. */
export type SendData = ArrayBufferView | string;
