import * as grpc from '@grpc/grpc-js';
import { Inject, Injectable, Logger } from '@nestjs/common';
import { readFileSync } from 'node:fs';
import * as net from 'node:net';
import { Counter } from 'prom-client';
import { cleanAgentText } from '../../common/agent-text';
import { releaseDecodedChunks } from '../../common/grpc-decoder';
import { sendFramedMessagesAsIs } from '../../common/grpc-send-framed';
import { syncServiceDefinition } from '../../common/proto';
import type { SyncRequest__Output } from '../../generated/overlay/v1/SyncRequest';
import { ControllerConfig } from '../config';
import { HelloHandler, HelloRefused } from './hello';
import type { SyncCall } from './host-session';

const HELLO_TIMEOUT_MS = 10_000;
/**
 * Connections the kernel may hold for accepting (it caps this at net.core.somaxconn). A reconnect
 * storm of thousands of agents overflowed Node's default of 511 while the event loop was busy,
 * and every agent whose connection was dropped waited out its backoff before trying again
 * (docs/benchmarks.md, Scale).
 */
export const GRPC_LISTEN_BACKLOG = 4096;

/** How a replica's gRPC server authenticates agents. */
export type TransportSecurity = { mode: 'tls'; ca: Buffer; cert: Buffer; key: Buffer } | { mode: 'insecure' };

export function transportSecurityFrom(config: ControllerConfig): TransportSecurity {
  if (config.tls) {
    return { mode: 'tls', ca: readFileSync(config.tls.ca), cert: readFileSync(config.tls.cert), key: readFileSync(config.tls.key) };
  }
  return { mode: 'insecure' };
}

/** `host:port`, an IPv6 address in brackets (`[::1]:50051`), as grpc-js binds and logs read it. */
export function hostPort(host: string, port: number): string {
  return net.isIPv6(host) ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * overlayd's gRPC transport: the grpc-js server on OVERLAY_GRPC_HOST:OVERLAY_GRPC_PORT (TLS with client
 * certificates, or insecure for development) serving SyncService.Sync. Each stream's first
 * message goes to the HelloHandler; a stream that sends none within HELLO_TIMEOUT_MS, or sends
 * anything else before its Hello is answered, is ended, and so is one whose Hello is refused,
 * with the refusal's status (a failure of the controller's own: UNAVAILABLE).
 */
@Injectable()
export class SyncServer {
  private readonly logger = new Logger('sync');
  private server?: grpc.Server;
  /** Streams waiting for their Hello, each with its refusal: ended at `stop` (the server's close would wait for them). */
  private readonly awaitingHello = new Map<SyncCall, (code: grpc.status, details: string) => void>();
  private listener?: net.Server;
  boundPort = 0;
  /** Streams open and waiting for their Hello (at most HELLO_TIMEOUT_MS each). */
  get streamsAwaitingHello(): number {
    return this.awaitingHello.size;
  }

  /** Streams ended before their Hello was answered, by gRPC status (registered by metrics/). */
  readonly hellosRefused = new Counter<'code'>({
    name: 'overlay_sync_hellos_refused_total',
    help: 'Agent streams this replica ended before or instead of answering their Hello, by gRPC status (unknown host, VTEP or certificate mismatch, an evicted agent instance, no Hello in time...)',
    labelNames: ['code'],
    registers: [],
  });

  constructor(
    @Inject(ControllerConfig) private readonly config: ControllerConfig,
    private readonly hello: HelloHandler,
  ) {}

  /** Binds the gRPC port; returns it. Called once the sessions are ready (DistributionPipeline). */
  async start(security: TransportSecurity): Promise<number> {
    // Each Ack's HTTP/2 chunk otherwise stays referenced by its stream's decoder until the next
    // message, long enough to be promoted: half of what a replica's scavenges promoted at 2,500
    // agents (src/common/grpc-decoder.ts).
    if (!releaseDecodedChunks()) {
      this.logger.warn('grpc-js stream decoder not as expected: decoded chunks stay referenced until the next message (more garbage promoted)');
    }
    // A snapshot chunk is framed once, in a buffer the session reuses (host-session.ts); without
    // this grpc-js copies each chunk into a frame of its own.
    if (!sendFramedMessagesAsIs()) {
      this.logger.warn('grpc-js server call not as expected: snapshot chunks are copied into a frame of its own (more garbage during snapshot storms)');
    }
    const server = new grpc.Server({ 'grpc.keepalive_time_ms': 20_000, 'grpc.keepalive_timeout_ms': 10_000, 'grpc.max_receive_message_length': 1024 * 1024 });
    server.addService(syncServiceDefinition(), { Sync: (call: SyncCall) => this.accept(call, security.mode === 'tls') });
    const credentials =
      security.mode === 'tls' ? grpc.ServerCredentials.createSsl(security.ca, [{ cert_chain: security.cert, private_key: security.key }], true) : grpc.ServerCredentials.createInsecure();
    if (security.mode === 'insecure') {
      this.logger.warn('gRPC without TLS: any client may claim to be any host. For development only; set OVERLAY_TLS_CA/CERT/KEY in production.');
    }
    // Our own listener, for its backlog (grpc-js's bindAsync takes Node's default); grpc-js serves
    // the connections it hands over, TLS included.
    const injector = server.createConnectionInjector(credentials);
    const listener = net.createServer((socket) => injector.injectConnection(socket));
    await new Promise<void>((resolve, reject) => {
      listener.once('error', reject);
      listener.listen({ host: this.config.grpcHost, port: this.config.grpcPort, backlog: GRPC_LISTEN_BACKLOG }, () => {
        listener.removeListener('error', reject);
        resolve();
      });
    });
    // An accept that fails (EMFILE: out of file descriptors) must not end the process; the agent retries.
    listener.on('error', (err) => this.logger.error(`gRPC listener: ${err.message}`));
    this.boundPort = (listener.address() as net.AddressInfo).port;
    this.server = server;
    this.listener = listener;
    return this.boundPort;
  }

  private accept(call: SyncCall, secure: boolean): void {
    const refuse = (code: grpc.status, details: string): void => {
      this.hellosRefused.inc({ code: grpc.status[code] });
      // The details quote the Hello (its host name, its VTEP): cleaned and bounded (a 900 KB name made a status never sent).
      call.emit('error', { code, details: cleanAgentText(details) });
    };
    if (!this.server) {
      // A call that arrived on an open connection once `stop` began: nothing would end it.
      refuse(grpc.status.UNAVAILABLE, 'controller shutting down');
      return;
    }
    const timer = setTimeout(() => refuse(grpc.status.DEADLINE_EXCEEDED, `no Hello within ${HELLO_TIMEOUT_MS} ms`), HELLO_TIMEOUT_MS);
    this.awaitingHello.set(call, refuse);
    // Nothing may follow the Hello before the controller answered it: there is nothing yet to
    // acknowledge or report on.
    const early = (): void => {
      this.logger.warn('an agent sent a message before its Hello was answered: INVALID_ARGUMENT');
      refuse(grpc.status.INVALID_ARGUMENT, 'a message before the Hello was answered');
    };
    call.once('data', (req: SyncRequest__Output) => {
      clearTimeout(timer);
      this.awaitingHello.delete(call);
      call.on('data', early);
      this.hello.answer(call, req, secure, () => call.removeListener('data', early)).catch((err: unknown) => {
        const refused = err instanceof HelloRefused ? err : new HelloRefused(grpc.status.UNAVAILABLE, `controller error: ${(err as Error).message}`);
        if (!(err instanceof HelloRefused)) {
          this.logger.error(`hello failed: ${(err as Error).stack}`);
        }
        refuse(refused.code, refused.message);
      });
    });
    const ended = (): void => {
      clearTimeout(timer);
      this.awaitingHello.delete(call);
    };
    call.on('error', ended);
    call.on('close', ended);
  }

  /**
   * Stops the server: streams waiting for their Hello are ended now (UNAVAILABLE; the agent tries
   * another replica), streams still open get 2 s to end before it is forced down (the sessions
   * have ended theirs: SessionRegistry.stop). Idempotent.
   */
  async stop(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    this.listener?.close();
    this.listener = undefined;
    for (const refuse of [...this.awaitingHello.values()]) {
      refuse(grpc.status.UNAVAILABLE, 'controller shutting down');
    }
    this.awaitingHello.clear();
    if (server) {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
    }
  }
}
