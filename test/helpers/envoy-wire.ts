import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import protobuf from "protobufjs";
import { PROTOS_DIR } from "../../src/transport/protos.js";

/**
 * Envoy's CheckRequest as bytes on the wire, built with protobufjs straight from the official
 * Envoy protos under `protos/` (never through riskgate's own proto-loader setup), and a gRPC
 * client that sends those bytes as they are: what the server decodes is what Envoy would send.
 */
export interface EnvoyWire {
  /**
   * Encodes a CheckRequest written in proto3 JSON (the form `riskgate replay` reads): field
   * names as in the .proto, Struct values (`metadata_context.filter_metadata`) as plain JSON,
   * `attributes.request.time` as an RFC 3339 string.
   */
  encode(json: Record<string, unknown>): Uint8Array;
  /** Sends encoded bytes to `Authorization/Check` and decodes the CheckResponse. */
  check(bytes: Uint8Array): Promise<WireResponse>;
  close(): void;
}

/** A CheckResponse decoded by protobufjs (field names as in the .proto, defaults filled). */
export interface WireResponse {
  status: { code: number; message: string };
  ok_response?: { headers: { header: { key: string; value: string } }[] };
  denied_response?: { status: { code: number }; body: string };
}

/** Connects (lazily) to riskgate's gRPC port at `address` (host:port). */
export function envoyWire(address: string): EnvoyWire {
  const root = new protobuf.Root();
  // google/protobuf well-known types come with protobufjs, the rest from protos/
  root.resolvePath = (_origin, target) =>
    target.startsWith("google/protobuf/") ? target : join(PROTOS_DIR, target);
  root.loadSync("envoy/service/auth/v3/external_auth.proto", { keepCase: true });
  root.resolveAll();
  const request = root.lookupType("envoy.service.auth.v3.CheckRequest");
  const response = root.lookupType("envoy.service.auth.v3.CheckResponse");
  const value = root.lookupType("google.protobuf.Value");
  // Value's fields by their numbers (1 null, 2 number, 3 string, 4 bool, 5 struct, 6 list),
  // so the encoding follows struct.proto whatever names protobufjs gives them
  const name = (id: number) => (value.fieldsById[id] as protobuf.Field).name;

  const toValue = (json: unknown): Record<string, unknown> => {
    if (json === null) return { [name(1)]: 0 };
    if (typeof json === "number") return { [name(2)]: json };
    if (typeof json === "string") return { [name(3)]: json };
    if (typeof json === "boolean") return { [name(4)]: json };
    if (Array.isArray(json)) return { [name(6)]: { values: json.map(toValue) } };
    return { [name(5)]: toStruct(json as Record<string, unknown>) };
  };
  const toStruct = (json: Record<string, unknown>) => ({
    fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, toValue(v)])),
  });

  const Client = grpc.makeGenericClientConstructor(
    {
      Check: {
        path: "/envoy.service.auth.v3.Authorization/Check",
        requestStream: false,
        responseStream: false,
        requestSerialize: (bytes: Uint8Array) => Buffer.from(bytes),
        requestDeserialize: (bytes: Buffer) => bytes,
        responseSerialize: (bytes: Buffer) => bytes,
        responseDeserialize: (bytes: Buffer) => bytes,
      },
    },
    "Authorization",
  );
  const client = new Client(
    address,
    grpc.credentials.createInsecure(),
  ) as unknown as grpc.Client & {
    Check: (
      bytes: Uint8Array,
      options: grpc.CallOptions,
      done: (err: grpc.ServiceError | null, res?: Buffer) => void,
    ) => void;
  };

  return {
    encode(json) {
      const copy = structuredClone(json) as {
        attributes?: {
          request?: { time?: unknown };
          metadata_context?: { filter_metadata?: Record<string, Record<string, unknown>> };
        };
      };
      const attrs = copy.attributes;
      const time = attrs?.request?.time;
      if (attrs?.request !== undefined && typeof time === "string") {
        const ms = Date.parse(time);
        attrs.request.time = { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
      }
      const metadata = attrs?.metadata_context?.filter_metadata;
      if (metadata !== undefined) {
        for (const ns of Object.keys(metadata)) {
          metadata[ns] = toStruct(metadata[ns] as Record<string, unknown>);
        }
      }
      const problem = request.verify(copy);
      if (problem !== null) throw new TypeError(`not a CheckRequest: ${problem}`);
      return request.encode(request.fromObject(copy)).finish();
    },
    check(bytes) {
      return new Promise((resolve, reject) => {
        client.Check(bytes, { deadline: Date.now() + 10_000 }, (err, res) => {
          if (err !== null || res === undefined) return reject(err);
          resolve(
            response.toObject(response.decode(res), {
              longs: Number,
              defaults: true,
            }) as WireResponse,
          );
        });
      });
    },
    close: () => client.close(),
  };
}

/**
 * What a decoded CheckResponse says: the decision (allow, challenge, throttle, deny: from the
 * denial's JSON body, else allow), its reason codes (from the status message of a denial) and
 * the headers added upstream on an allow.
 */
export function outcomeOf(res: WireResponse): {
  decision: string;
  reasons: string;
  headers: Map<string, string>;
} {
  const added = (res.ok_response?.headers ?? []).map((h) => [h.header.key, h.header.value]);
  const headers = new Map(added as [string, string][]);
  if (res.status.code === 0) return { decision: "allow", reasons: "", headers };
  const body = JSON.parse(res.denied_response?.body || "{}") as { decision?: string };
  return { decision: body.decision ?? "deny", reasons: res.status.message, headers };
}
