import { parseArgs } from "node:util";
import { loadSettings } from "../config/settings.js";
import { RiskgateError } from "../errors.js";
import type { CheckRequestMessage } from "../transport/check-request.js";
import type { CheckResponseMessage } from "../transport/check-response.js";
import { createClient } from "./client.js";
import { defaultAddress } from "./health.js";

/** `riskgate check --help`. */
export const HELP = `riskgate check: send one CheckRequest to a running riskgate, as Envoy would

Prints the decision, the gRPC and HTTP status, the headers and the body. The request carries
user-agent: riskgate-check unless --header sets another.

Usage: riskgate check [flags]

Flags:
  --address HOST:PORT   riskgate's gRPC address (default: RISKGATE_GRPC_ADDRESS, 127.0.0.1:9191)
  --token JWT           sent as Authorization: Bearer JWT
  --method M            the HTTP method (default GET)
  --path P              the path, with its query (default /)
  --host H              the Host (default api.example.com)
  --ip IP               the client's address (default 203.0.113.7)
  --header k=v          a request header; repeat for more
  --route NAME          name the riskgate route (the riskgate_route context extension)
  --json                print the answer as one JSON object
  --explain             decide locally instead and print each stage (as riskgate explain),
                        with --policy FILE (default RISKGATE_POLICY), --jwks FILE or --dev,
                        and --at TIME (the decision time, default now)

Example:
  T=$(riskgate token --sub alice --tier pro --amr pwd,mfa)
  riskgate check --token "$T" --path /v1/items
  riskgate check --token "$T" --path /admin/users --explain --dev

Exit codes:
  0  allow
  1  any other decision (challenge, throttle, deny)
  2  riskgate unreachable or the call failed (RISKGATE_CHECK_FAILED), or a bad flag`;

/** Builds the CheckRequest Envoy would send for one HTTP request. */
export function buildCheckRequest(opts: {
  method: string;
  path: string;
  host: string;
  ip: string;
  token?: string;
  headers: Record<string, string>;
  contextExtensions?: Record<string, string>;
}): CheckRequestMessage {
  const headers: Record<string, string> = {
    ":method": opts.method,
    ":path": opts.path,
    ":authority": opts.host,
    "user-agent": "riskgate-check",
    ...opts.headers,
  };
  if (opts.token !== undefined) headers.authorization = `Bearer ${opts.token}`;
  return {
    attributes: {
      source: { address: { socket_address: { address: opts.ip, port_value: 40000 } } },
      request: {
        http: { method: opts.method, path: opts.path, host: opts.host, headers },
      },
      ...(opts.contextExtensions ? { context_extensions: opts.contextExtensions } : {}),
    },
  };
}

/** The verdict a CheckResponse carries, read back as a person would want to see it. */
export function describeResponse(res: CheckResponseMessage): {
  decision: string;
  httpStatus: number;
  headers: Record<string, string>;
  body: string;
  removed: string[];
} {
  if (res.ok_response !== undefined && res.ok_response !== null) {
    const headers = Object.fromEntries(
      (res.ok_response.headers ?? []).map((h) => [h.header.key, h.header.value]),
    );
    return {
      decision: headers["x-riskgate-decision"] ?? "allow",
      httpStatus: 200,
      headers,
      body: "",
      removed: res.ok_response.headers_to_remove ?? [],
    };
  }
  const denied = res.denied_response;
  const headers = Object.fromEntries(
    (denied?.headers ?? []).map((h) => [h.header.key, h.header.value]),
  );
  let decision = res.status?.code === 0 ? "allow" : "deny";
  try {
    decision = (JSON.parse(denied?.body ?? "{}") as { decision?: string }).decision ?? decision;
  } catch {
    // a non-JSON body keeps the status-derived name
  }
  return {
    decision,
    httpStatus: denied?.status?.code ?? 403,
    headers,
    body: denied?.body ?? "",
    removed: [],
  };
}

/** `riskgate check`: sends one CheckRequest and prints the verdict; exit 0 allow, 1 otherwise. */
export async function runCheck(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      address: { type: "string", default: defaultAddress(loadSettings(process.env).grpcAddress) },
      token: { type: "string" },
      method: { type: "string", default: "GET" },
      path: { type: "string", default: "/" },
      host: { type: "string", default: "api.example.com" },
      ip: { type: "string", default: "203.0.113.7" },
      header: { type: "string", multiple: true, default: [] },
      route: { type: "string" },
      json: { type: "boolean", default: false },
      // --explain decides locally with the policy and prints each stage (riskgate explain)
      explain: { type: "boolean", default: false },
      policy: { type: "string" },
      jwks: { type: "string" },
      dev: { type: "boolean", default: false },
      at: { type: "string" },
    },
  });
  const headers: Record<string, string> = {};
  for (const h of values.header) {
    const eq = h.indexOf("=");
    if (eq <= 0) {
      process.stderr.write(`--header wants k=v, got "${h}"\n`);
      return 2;
    }
    headers[h.slice(0, eq).trim().toLowerCase()] = h.slice(eq + 1);
  }
  const request = buildCheckRequest({
    method: values.method.toUpperCase(),
    path: values.path,
    host: values.host,
    ip: values.ip,
    headers,
    ...(values.token === undefined ? {} : { token: values.token }),
    ...(values.route === undefined ? {} : { contextExtensions: { riskgate_route: values.route } }),
  });
  if (values.explain) {
    const policy = values.policy ?? loadSettings(process.env).policyFile;
    const { explainCheckRequest } = await import("./explain-command.js");
    return explainCheckRequest(request, { ...values, policy });
  }
  const client = createClient(values.address);
  let res: CheckResponseMessage;
  try {
    res = await client.check(request);
  } catch (err) {
    const message = (err as Error).message;
    const failed = new RiskgateError("RISKGATE_CHECK_FAILED", message, {}, { cause: err });
    process.stderr.write(`riskgate check: ${failed.code}: ${failed.message}\n`);
    return 2;
  } finally {
    client.close();
  }
  const view = describeResponse(res);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ grpc_status: res.status?.code ?? 0, ...view })}\n`);
  } else {
    const lines = [
      `decision: ${view.decision}`,
      `grpc status: ${res.status?.code ?? 0}${res.status?.message ? ` (${res.status.message})` : ""}`,
      `http status: ${view.httpStatus}`,
      ...Object.entries(view.headers).map(([k, v]) => `header: ${k}: ${v}`),
      ...(view.removed.length > 0 ? [`headers removed: ${view.removed.join(", ")}`] : []),
      ...(view.body === "" ? [] : [`body: ${view.body}`]),
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  }
  return view.decision === "allow" ? 0 : 1;
}
