import * as grpc from "@grpc/grpc-js";
import type { Settings } from "./config/settings.js";
import { RiskgateError } from "./errors.js";
import type { Logger } from "./telemetry/logger.js";
import { type CheckHandlerDeps, createCheckHandler } from "./transport/envoy-grpc.js";
import type { Health } from "./transport/health.js";
import {
  type HttpAuthzDeps,
  type HttpAuthzServer,
  startHttpAuthz,
} from "./transport/http-authz.js";
import { loadProtos } from "./transport/protos.js";

/**
 * The server's listeners, one function each: the gRPC server (Envoy's ext_authz Check and the
 * health service), its bind, the HTTP forward-auth listener with dev mode's port fallback, and
 * the gRPC drain. app.ts wires them; nothing here decides anything.
 */

/** A gRPC server with the Check and health services, not yet bound. */
export function createGrpcServer(
  check: CheckHandlerDeps,
  health: Health,
  settings: Pick<Settings, "grpcMaxConnectionIdleMs">,
): grpc.Server {
  const protos = loadProtos();
  const server = new grpc.Server({
    "grpc.max_receive_message_length": 4 * 1024 * 1024,
    "grpc.keepalive_permit_without_calls": 1,
    // idle clients let go of their file descriptors (grpc-js cannot cap connections)
    ...(settings.grpcMaxConnectionIdleMs > 0
      ? { "grpc.max_connection_idle_ms": settings.grpcMaxConnectionIdleMs }
      : {}),
  });
  server.addService(protos.authorization.service, { Check: createCheckHandler(check) });
  server.addService(protos.health.service, health.implementation);
  return server;
}

/**
 * Binds the gRPC server; resolves to the port. A bind failure is RISKGATE_LISTEN_FAILED, and
 * the server object is let go (nothing was bound).
 */
export async function bindGrpc(server: grpc.Server, address: string): Promise<number> {
  try {
    return await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, bound) =>
        err ? reject(listenFailed(address, err)) : resolve(bound),
      );
    });
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
}

/**
 * Starts the HTTP forward-auth listener when the settings ask for one (after gRPC, closed in
 * shutdown); undefined when it is off, or when dev mode's default port is taken.
 */
export async function startHttpListener(
  settings: Settings,
  logger: Logger,
  deps: HttpAuthzDeps,
): Promise<HttpAuthzServer | undefined> {
  const address = httpAddressOf(settings);
  if (address === undefined) return undefined;
  try {
    const server = await startHttpAuthz(address, settings, deps);
    logger.info({ address, http_port: server.port }, "riskgate forward-auth serving");
    return server;
  } catch (err) {
    devPortFallback(settings, logger, address, err);
    return undefined;
  }
}

/**
 * Dev mode's default forward-auth port may be taken (two dev servers): dev goes on without
 * it. Any other failure to listen is RISKGATE_LISTEN_FAILED (thrown).
 */
function devPortFallback(settings: Settings, logger: Logger, address: string, err: unknown): void {
  if (settings.httpAddress !== "" || (err as NodeJS.ErrnoException).code !== "EADDRINUSE") {
    throw err instanceof Error ? listenFailed(address, err, "RISKGATE_HTTP_ADDRESS") : err;
  }
  logger.warn({ address }, "dev mode: forward-auth port in use; HTTP listener off");
}

/** Lets in-flight Checks finish, up to graceMs, then forces the gRPC server down. */
export function drainGrpc(server: grpc.Server, graceMs: number, logger: Logger): Promise<void> {
  return new Promise<void>((resolve) => {
    const force = setTimeout(() => {
      logger.warn({ graceMs }, "drain timed out; forcing shutdown");
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(force);
      resolve();
    });
  });
}

/** A bind failure as RISKGATE_LISTEN_FAILED naming the address, the reason and the setting. */
function listenFailed(
  address: string,
  err: Error,
  setting = "RISKGATE_GRPC_ADDRESS (or --address)",
): RiskgateError {
  // grpc-js: "No address added ... errors: [listen EADDRINUSE: ...]" ("[bind EADDRINUSE ...]" in a worker)
  const reason = /(?:listen|bind):? (E[A-Z]+)/.exec(err.message)?.[1] ?? err.message;
  return new RiskgateError(
    "RISKGATE_LISTEN_FAILED",
    `cannot listen on ${address} (${reason}); set ${setting} to a free address`,
    { address, setting: setting.split(" ")[0] },
    { cause: err },
  );
}

/** The HTTP forward-auth listener's address: unset is off, or 0.0.0.0:9192 in dev mode. */
function httpAddressOf(settings: Settings): string | undefined {
  const address = settings.httpAddress;
  if (address === "off") return undefined;
  if (address === "") return settings.dev ? "0.0.0.0:9192" : undefined;
  return address;
}
