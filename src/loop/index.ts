/**
 * `iomux/loop`: asyncio's selector event loop.
 *
 * @module
 */

export type {
  AcceptedSocketOptions,
  CreateConnectionOptions,
  CreateUnixConnectionOptions,
  SslOption,
} from './connections.js';
export type { DatagramEndpointOptions, EndpointHostPort } from './datagram-endpoint.js';
export { GetAddrInfoError, type GetAddrInfoOptions } from './dns.js';
export {
  type BackendName,
  EventLoop,
  type EventLoopOptions,
  type ExceptionHandler,
  type LoopSelector,
  type SelectorName,
} from './event-loop.js';
export { Handle, TimerHandle } from './handle.js';
export type {
  BaseProtocol,
  BaseTransport,
  BufferedProtocol,
  DatagramProtocol,
  DatagramTransport,
  Protocol,
  ProtocolFactory,
  ReadTransport,
  Transport,
  TransportExtraInfo,
  WriteTransport,
} from './protocols.js';
export { type CreateServerOptions, type CreateUnixServerOptions, Server } from './server.js';
export type { LoopStats } from './stats.js';
export {
  ConcurrentReadError,
  DEFAULT_STREAM_LIMIT,
  IncompleteReadError,
  LimitOverrunError,
  LineTooLongError,
  type ReadingControl,
  StreamReader,
  type StreamReaderOptions,
  type StreamSeparator,
} from './stream-reader.js';
export {
  type ClientConnected,
  type OpenConnectionOptions,
  type OpenUnixConnectionOptions,
  openConnection,
  openUnixConnection,
  type StartServerOptions,
  type StartUnixServerOptions,
  type StreamOptions,
  StreamReaderProtocol,
  StreamWriter,
  startServer,
  startUnixServer,
} from './streams.js';
export type { StartTlsOptions } from './tls-ops.js';
export {
  type ChromeTrace,
  type ChromeTraceEvent,
  DEFAULT_TRACE_CAPACITY,
  LoopTrace,
  type LoopTraceOptions,
  type SpanOptions,
  type TraceCall,
  type TraceEvent,
  type TraceIdle,
  type TraceOp,
  type TraceOperation,
  type TraceOutcome,
  type TraceSpan,
  type TraceWait,
} from './trace.js';
