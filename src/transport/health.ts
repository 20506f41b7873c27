import type * as grpc from "@grpc/grpc-js";

/** grpc.health.v1 ServingStatus. */
export const ServingStatus = {
  UNKNOWN: 0,
  SERVING: 1,
  NOT_SERVING: 2,
  SERVICE_UNKNOWN: 3,
} as const;
type Status = (typeof ServingStatus)[keyof typeof ServingStatus];

/** The service names riskgate reports: "" (the whole server) and the ext_authz service. */
export const HEALTH_SERVICES = ["", "envoy.service.auth.v3.Authorization"] as const;

export interface Health {
  readonly implementation: grpc.UntypedServiceImplementation;
  set(status: Status): void;
  get(): Status;
  /** Ends open Watch streams (on shutdown). */
  close(): void;
}

/** grpc.health.v1 Check and Watch over one status shared by {@link HEALTH_SERVICES}. */
export function createHealth(): Health {
  let status: Status = ServingStatus.NOT_SERVING;
  const watchers = new Set<grpc.ServerWritableStream<{ service?: string }, { status: number }>>();
  const known = (service: string | undefined) =>
    (HEALTH_SERVICES as readonly string[]).includes(service ?? "");

  return {
    implementation: {
      Check(
        call: grpc.ServerUnaryCall<{ service?: string }, { status: number }>,
        callback: grpc.sendUnaryData<{ status: number }>,
      ) {
        if (!known(call.request.service)) {
          callback({ code: 5, details: `unknown service ${call.request.service}` });
          return;
        }
        callback(null, { status });
      },
      Watch(call: grpc.ServerWritableStream<{ service?: string }, { status: number }>) {
        if (!known(call.request.service)) {
          call.write({ status: ServingStatus.SERVICE_UNKNOWN });
          return;
        }
        watchers.add(call);
        call.on("cancelled", () => watchers.delete(call));
        call.write({ status });
      },
    },
    set(next) {
      if (next === status) return;
      status = next;
      for (const w of watchers) w.write({ status });
    },
    get: () => status,
    close() {
      for (const w of watchers) w.end();
      watchers.clear();
    },
  };
}
