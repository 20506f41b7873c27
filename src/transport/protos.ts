import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";

/** The repo's `protos/` folder (works from `src/` under vitest and from `dist/src/` when built). */
export const PROTOS_DIR = fileURLToPath(
  new URL(import.meta.url.includes("/dist/") ? "../../../protos" : "../../protos", import.meta.url),
);

/** Decoding options shared by server and clients: field names as in the .proto (snake_case). */
export const PROTO_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: Number,
  enums: Number,
  bytes: Buffer,
  defaults: false,
  oneofs: false,
  includeDirs: [PROTOS_DIR],
};

type ServiceCtor = grpc.ServiceClientConstructor;

export interface LoadedProtos {
  readonly authorization: ServiceCtor;
  readonly health: ServiceCtor;
}

/** Loads the ext_authz and health service definitions (once per server or client). */
export function loadProtos(): LoadedProtos {
  const def = protoLoader.loadSync(
    ["envoy/service/auth/v3/external_auth.proto", "grpc/health/v1/health.proto"],
    PROTO_OPTIONS,
  );
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    envoy: { service: { auth: { v3: { Authorization: ServiceCtor } } } };
    grpc: { health: { v1: { Health: ServiceCtor } } };
  };
  return {
    authorization: pkg.envoy.service.auth.v3.Authorization,
    health: pkg.grpc.health.v1.Health,
  };
}
