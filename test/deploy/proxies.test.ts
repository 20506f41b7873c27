import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { Middleware } from "@kubernetes-models/traefik/traefik.io/v1alpha1/Middleware";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parsePolicy } from "../../src/access/policy.js";
import { HTTP_AUTH_PATHS } from "../../src/transport/http-request.js";
import { renderHttpAnswer } from "../../src/transport/http-response.js";
import { accessRequest } from "../helpers/access-request.js";
import { checkBootstrap, loadEnvoyApi } from "./envoy-api.js";
import { type K8sObject, kubectlAvailable, loadObjects, render } from "./k8s-objects.js";
import { createK8sSchemas } from "./k8s-schema.js";

/**
 * The shipped forward-auth configs agree with riskgate and with each proxy's schema: every one
 * copies exactly the headers riskgate sets on allow and strips them from the client's request,
 * Traefik's middlewares validate against Traefik's own schema, and the ingress-nginx component
 * and Ingress render with the real kustomize and validate against the Kubernetes API schemas.
 * nginx and Caddy configs are run for real by test/e2e/forward-auth-proxies.test.ts; the Envoy
 * HTTP ext_authz bootstrap is checked against Envoy's own API definitions.
 */

type Obj = Record<string, unknown>;

const demo = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "demo.yaml").doc;

/** Every header riskgate may set upstream on allow, under the demo policy. */
const UPSTREAM = (() => {
  const names = new Set<string>();
  const verdicts = [
    { kind: "allow", tier: "pro", subject: "a", shadowOf: "deny" },
    { kind: "challenge", style: "header", acrValues: "mfa" },
  ] as const;
  for (const v of verdicts) {
    const a = renderHttpAnswer(
      "forward",
      { requestId: "r", score: 0, reasons: [], ...v },
      accessRequest(),
      demo.decisions,
    );
    for (const [k] of a.headers) names.add(k);
  }
  return [...names].sort();
})();

const lower = (list: readonly string[]) => list.map((h) => h.toLowerCase()).sort();

/**
 * Field names of one middleware kind (`forwardAuth`, `headers`) in Traefik's Middleware spec, as
 * @kubernetes-models/traefik declares it: the direct members of that property's object type.
 */
function fieldsOf(middleware: string): string[] {
  const require = createRequire(import.meta.url);
  const root = dirname(require.resolve("@kubernetes-models/traefik/package.json"));
  const lines = readFileSync(join(root, "traefik.io/v1alpha1/Middleware.d.ts"), "utf8").split("\n");
  const start = lines.findIndex((l) => l.trimStart().startsWith(`"${middleware}"?: {`));
  expect(start, `Middleware.d.ts declares ${middleware}`).toBeGreaterThan(-1);
  const indent = (lines[start] as string).length - (lines[start] as string).trimStart().length;
  const fields: string[] = [];
  for (const line of lines.slice(start + 1)) {
    if (line === `${" ".repeat(indent)}};`) break;
    const m = new RegExp(`^ {${indent + 4}}"(\\w+)"\\??:`).exec(line);
    if (m !== null) fields.push(m[1] as string);
  }
  return fields;
}

describe("riskgate's upstream headers", () => {
  it("are the ones every shipped config copies and strips", () => {
    expect(UPSTREAM).toEqual([
      "x-riskgate-challenge",
      "x-riskgate-decision",
      "x-riskgate-request-id",
      "x-riskgate-score",
      "x-riskgate-shadow-decision",
      "x-riskgate-subject",
      "x-riskgate-tier",
    ]);
    const nginx = readFileSync("proxies/nginx/riskgate.conf", "utf8");
    const copied = [...nginx.matchAll(/proxy_set_header (X-Riskgate-[\w-]+) \$rg_/g)].map(
      (m) => m[1] as string,
    );
    expect(lower(copied)).toEqual(UPSTREAM);
    for (const strip of demo.decisions.strip_headers) {
      expect(nginx.toLowerCase()).toContain(`proxy_set_header ${strip} "";`);
    }
    const caddy = readFileSync("proxies/caddy/Caddyfile", "utf8");
    expect(lower(/copy_headers (.*)/.exec(caddy)?.[1]?.split(" ") ?? [])).toEqual(UPSTREAM);
    expect(caddy).toContain("request_header -X-Riskgate-*");
    expect(caddy).toContain(`uri ${HTTP_AUTH_PATHS.forward}`);
    expect(nginx).toContain(`proxy_pass http://riskgate_http${HTTP_AUTH_PATHS.nginx};`);
  });
});

describe("Traefik dynamic configuration", () => {
  const config = parse(readFileSync("proxies/traefik/dynamic.yaml", "utf8")) as {
    http: { routers: Record<string, Obj>; middlewares: Record<string, Obj> };
  };
  const { forwardAuth } = config.http.middlewares.riskgate as { forwardAuth: Obj };
  const { headers } = config.http.middlewares["riskgate-strip"] as { headers: Obj };

  it("validates against Traefik's middleware schema, with no unknown fields", () => {
    for (const [name, spec] of Object.entries(config.http.middlewares)) {
      expect(() => new Middleware({ metadata: { name }, spec }).validate(), name).not.toThrow();
    }
    const forwardFields = fieldsOf("forwardAuth");
    for (const key of Object.keys(forwardAuth)) expect(forwardFields, key).toContain(key);
    const headerFields = fieldsOf("headers");
    for (const key of Object.keys(headers)) expect(headerFields, key).toContain(key);
    // the schema check bites: a wrong type is refused
    expect(() =>
      new Middleware({
        metadata: { name: "bad" },
        spec: { forwardAuth: { ...forwardAuth, trustForwardHeader: "no" } },
      } as never).validate(),
    ).toThrow(/trustForwardHeader/);
  });

  it("strips before it asks riskgate, copies riskgate's headers, and trusts no client X-Forwarded-*", () => {
    expect(config.http.routers.api?.middlewares).toEqual(["riskgate-strip", "riskgate"]);
    expect(String(forwardAuth.address)).toMatch(new RegExp(`${HTTP_AUTH_PATHS.forward}$`));
    expect(forwardAuth.trustForwardHeader).toBe(false);
    expect(lower(forwardAuth.authResponseHeaders as string[])).toEqual(UPSTREAM);
    const stripped = headers.customRequestHeaders as Record<string, string>;
    expect(Object.values(stripped).every((v) => v === "")).toBe(true);
    expect(lower(Object.keys(stripped))).toEqual(
      [...UPSTREAM, ...demo.decisions.strip_headers].sort(),
    );
  });
});

const kubectl = kubectlAvailable();

describe.runIf(kubectl)("ingress-nginx: component and annotated Ingress", () => {
  let objects: K8sObject[];
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "rg-ingress-nginx-"));
    writeFileSync(
      join(dir, "kustomization.yaml"),
      `resources: [${relative(dir, resolve("k8s/overlays/prod"))}]\ncomponents: [${relative(dir, resolve("k8s/ingress-nginx"))}]\n`,
    );
    objects = render(dir);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const find = (kind: string, name: string) =>
    objects.find((o) => o.kind === kind && o.metadata.name === name) as K8sObject;

  it("renders onto the prod overlay and validates against the Kubernetes schemas", async () => {
    const schemas = createK8sSchemas();
    for (const o of [...objects, ...loadObjects("k8s/ingress-nginx/app-ingress.yaml")]) {
      expect(await schemas.check(o), `${o.kind}/${o.metadata.name}`).toEqual([]);
    }
  });

  it("turns the listener on, exposes it, and lets only ingress-nginx reach it", () => {
    const pod = (find("Deployment", "riskgate").spec as { template: { spec: Obj } }).template.spec;
    const container = (pod.containers as Obj[])[0] as {
      env: { name: string; value: string }[];
      ports: { name: string; containerPort: number }[];
    };
    const address = container.env.find((e) => e.name === "RISKGATE_HTTP_ADDRESS")?.value;
    const port = container.ports.find((p) => p.name === "http")?.containerPort;
    expect(address).toBe(`0.0.0.0:${port}`);
    expect(container.env.some((e) => e.name === "RISKGATE_HTTP_TRUSTED_PROXIES")).toBe(true);
    const svc = find("Service", "riskgate");
    const http = (
      svc.spec as { ports: { name: string; port: number; targetPort: string }[] }
    ).ports.find((p) => p.name === "http");
    expect(http).toMatchObject({ port: 9192, targetPort: "http" });
    // the gRPC port is still there: the patch added, it did not replace
    expect((svc.spec as { ports: { name: string }[] }).ports.map((p) => p.name)).toContain("grpc");
    const rules = (find("NetworkPolicy", "riskgate").spec as { ingress: Obj[] }).ingress;
    expect(rules).toHaveLength(3);
    expect(JSON.stringify(rules[2])).toContain('"kubernetes.io/metadata.name":"ingress-nginx"');

    const ingress = loadObjects("k8s/ingress-nginx/app-ingress.yaml")[0] as K8sObject;
    const annotations = ingress.metadata.annotations as Record<string, string>;
    expect(annotations["nginx.ingress.kubernetes.io/auth-url"]).toBe(
      `http://${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local:${http?.port}${HTTP_AUTH_PATHS.nginx}`,
    );
    expect(
      lower(annotations["nginx.ingress.kubernetes.io/auth-response-headers"]?.split(",") ?? []),
    ).toEqual(UPSTREAM);
  });
});

describe("Istio envoyExtAuthzHttp provider", () => {
  // istio.mesh.v1alpha1 MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationHttpProvider
  const HTTP_PROVIDER = [
    "service",
    "port",
    "timeout",
    "pathPrefix",
    "failOpen",
    "statusOnError",
    "includeRequestHeadersInCheck",
    "includeAdditionalHeadersInCheck",
    "includeRequestBodyInCheck",
    "headersToUpstreamOnAllow",
    "headersToDownstreamOnDeny",
    "headersToDownstreamOnAllow",
  ];
  const mesh = parse(readFileSync("k8s/istio/extension-provider-http.yaml", "utf8")) as {
    spec: { meshConfig: { extensionProviders: { name: string; envoyExtAuthzHttp: Obj }[] } };
  };
  const provider = mesh.spec.meshConfig.extensionProviders[0]?.envoyExtAuthzHttp as Obj;

  it("names only provider fields, sends the path after riskgate's prefix, and fails closed", () => {
    for (const key of Object.keys(provider)) expect(HTTP_PROVIDER, key).toContain(key);
    expect(provider).toMatchObject({
      port: 9192,
      pathPrefix: HTTP_AUTH_PATHS.envoy,
      failOpen: false,
      statusOnError: "503",
    });
    expect(lower(provider.headersToUpstreamOnAllow as string[])).toEqual(UPSTREAM);
    expect(provider.headersToDownstreamOnDeny).toEqual(
      expect.arrayContaining(["www-authenticate", "retry-after", "content-type"]),
    );
    expect(provider.includeRequestHeadersInCheck).toEqual(
      expect.arrayContaining(["authorization", "cookie", "traceparent"]),
    );
  });
});

describe("Envoy HTTP ext_authz bootstrap", () => {
  const file = "proxies/envoy/http-ext-authz.yaml";
  const config = parse(readFileSync(file, "utf8")) as Obj;
  type Hcm = { http_filters: { typed_config: Obj }[] };
  type Listener = { filter_chains: { filters: { typed_config: Hcm }[] }[] };
  const listener = (config.static_resources as { listeners: Listener[] }).listeners[0];
  const extAuthz = listener?.filter_chains[0]?.filters[0]?.typed_config.http_filters[0]
    ?.typed_config as Obj;

  it("passes Envoy's own API definitions: every field known, no deprecated one", () => {
    expect(checkBootstrap(loadEnvoyApi(), config).issues).toEqual([]);
  });

  it("asks riskgate's envoy dialect, fails closed, passes riskgate's headers both ways", () => {
    expect(extAuthz).toMatchObject({
      transport_api_version: "V3",
      failure_mode_allow: false,
      status_on_error: { code: "ServiceUnavailable" },
      http_service: { path_prefix: HTTP_AUTH_PATHS.envoy },
    });
    const response = (extAuthz.http_service as Obj).authorization_response as Obj;
    expect(response.allowed_upstream_headers).toEqual({ patterns: [{ prefix: "x-riskgate-" }] });
    const toClient = (response.allowed_client_headers as { patterns: { exact: string }[] })
      .patterns;
    expect(toClient.map((p) => p.exact)).toEqual(
      expect.arrayContaining(["www-authenticate", "retry-after", "location", "content-type"]),
    );
    const sent = (extAuthz.allowed_headers as { patterns: { exact: string }[] }).patterns;
    expect(sent.map((p) => p.exact)).toEqual(
      expect.arrayContaining(["authorization", "cookie", "user-agent", "x-forwarded-for"]),
    );
  });
});
