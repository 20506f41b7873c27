import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { parsePolicy } from "../../src/access/policy.js";
import { SETTINGS } from "../../src/config/settings.js";
import { HEALTH_SERVICES } from "../../src/transport/health.js";
import {
  containersOf,
  type K8sObject,
  kubectlAvailable,
  render as kustomize,
  loadObjects,
  podSpecOf,
} from "./k8s-objects.js";
import { createK8sSchemas, type K8sSchemas } from "./k8s-schema.js";

/**
 * k8s/ rendered overlay by overlay with the real kustomize (`kubectl kustomize`), every
 * object validated against the Kubernetes API schemas (./k8s-schema.ts: kubernetes-models plus
 * unknown fields), then cross-checked: ports, probes, selectors, the policy mount and content,
 * the drain timing, the security context, and the names Envoy and Istio use to reach riskgate.
 */
type Obj = Record<string, unknown>;
interface Container {
  name: string;
  image: string;
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: Obj }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { exec?: { command: string[] } } };
  resources?: { requests?: Obj; limits?: Obj };
  securityContext?: Obj;
  volumeMounts?: { name: string; mountPath: string; subPath?: string }[];
}
interface Probe {
  grpc?: { port: number; service?: string };
  tcpSocket?: { port: number | string };
  httpGet?: { port: number | string };
  exec?: unknown;
}
interface PodSpec {
  serviceAccountName?: string;
  containers: Container[];
  securityContext?: Obj;
  terminationGracePeriodSeconds?: number;
  volumes?: { name: string; configMap?: { name: string } }[];
}

const OVERLAYS = ["k8s/overlays/dev", "k8s/overlays/prod"];
const NAMESPACE = "riskgate";
const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
const demoText = readFileSync("policies/demo.yaml", "utf8");

const find = (objects: K8sObject[], kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  expect(o, `${kind}/${name}`).toBeDefined();
  return o as K8sObject;
};
const spec = (o: K8sObject) => o.spec as Obj;
const labelsMatch = (selector: Obj | undefined, labels: Obj | undefined) =>
  selector !== undefined &&
  Object.keys(selector).length > 0 &&
  Object.entries(selector).every(([k, v]) => labels?.[k] === v);
const podLabels = (o: K8sObject) =>
  (spec(o).template as { metadata?: { labels?: Obj } } | undefined)?.metadata?.labels;
const workloads = (objects: K8sObject[]) => objects.filter((o) => podSpecOf(o) !== undefined);
const riskgateContainer = (objects: K8sObject[]) =>
  (podSpecOf(find(objects, "Deployment", "riskgate")) as unknown as PodSpec).containers.find(
    (c) => c.name === "riskgate",
  ) as Container;
const envOf = (c: Container) => new Map((c.env ?? []).map((e) => [e.name, e]));

/** A port reference (number or name) resolved against a container's ports. */
function resolvePort(
  containers: Container[],
  ref: number | string | undefined,
): number | undefined {
  for (const c of containers) {
    const p = c.ports?.find((x) => x.name === ref || x.containerPort === ref);
    if (p !== undefined) return p.containerPort;
  }
  return undefined;
}

const kubectl = kubectlAvailable();
const rendered = new Map<string, K8sObject[]>();
/** An overlay rendered once per run (each test gets its own copy to change). */
const render = (dir: string): K8sObject[] => {
  let objects = rendered.get(dir);
  if (objects === undefined) {
    objects = kustomize(dir);
    rendered.set(dir, objects);
  }
  return structuredClone(objects);
};

let schemas: K8sSchemas;
beforeAll(() => {
  schemas = createK8sSchemas();
});

describe.runIf(kubectl)("the renderer and the schema check catch mistakes", () => {
  it("the schema check fails on an unknown field and a wrong type", async () => {
    const objects = render("k8s/overlays/dev");
    const deployment = structuredClone(find(objects, "Deployment", "riskgate"));
    const container = (podSpecOf(deployment) as unknown as PodSpec).containers[0] as unknown as Obj;
    container.readinesProbe = container.readinessProbe;
    (container.ports as Obj[])[0] = { name: "grpc", containerPort: "9191" };
    const issues = await schemas.check(deployment);
    expect(issues.map((i) => i.path)).toContain("spec.template.spec.containers[0].readinesProbe");
    expect(issues.map((i) => i.message).join("\n")).toMatch(/containerPort must be integer/);
    expect(await schemas.check(find(objects, "Deployment", "riskgate"))).toEqual([]);
  });

  it("renders strategic merges by key, and fails on a patch that targets nothing", () => {
    // the dev patch overrides RISKGATE_LOG_LEVEL: merged by name, not appended twice
    const env = riskgateContainer(render("k8s/overlays/dev")).env ?? [];
    expect(env.filter((e) => e.name === "RISKGATE_LOG_LEVEL")).toEqual([
      { name: "RISKGATE_LOG_LEVEL", value: "debug" },
    ]);
    const dir = mkdtempSync(join(tmpdir(), "rg-kustomize-"));
    try {
      writeFileSync(
        join(dir, "patch.yaml"),
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: { name: nope }\n",
      );
      const base = relative(dir, resolve("k8s/base"));
      writeFileSync(
        join(dir, "kustomization.yaml"),
        `resources: [${base}]\npatches: [{ path: patch.yaml }]\n`,
      );
      expect(() => kustomize(dir)).toThrow(/kubectl kustomize .*nope/s);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.runIf(kubectl).each(OVERLAYS)("%s", (overlay) => {
  let objects: K8sObject[];
  let container: Container;
  let pod: PodSpec;
  let env: Map<string, NonNullable<Container["env"]>[number]>;
  beforeAll(() => {
    objects = render(overlay);
    container = riskgateContainer(objects);
    pod = podSpecOf(find(objects, "Deployment", "riskgate")) as unknown as PodSpec;
    env = envOf(container);
  });

  it("every object passes the Kubernetes API schema, no unknown field", async () => {
    expect(objects.length).toBeGreaterThanOrEqual(9);
    for (const o of objects) {
      expect(await schemas.check(o), `${o.kind}/${o.metadata.name}`).toEqual([]);
    }
  });

  it("everything lives in the riskgate namespace, names are unique", () => {
    const ids = objects.map((o) => `${o.kind}/${o.metadata.name}`);
    expect(new Set(ids).size).toBe(ids.length);
    for (const o of objects) {
      if (o.kind === "Namespace") expect(o.metadata.name).toBe(NAMESPACE);
      else expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe(NAMESPACE);
    }
  });

  it("ports agree: Services, probes, settings, NetworkPolicies", () => {
    for (const svc of objects.filter((o) => o.kind === "Service")) {
      const selector = spec(svc).selector as Obj;
      const backends = workloads(objects).filter((w) => labelsMatch(selector, podLabels(w)));
      expect(backends.length, `a workload behind Service ${svc.metadata.name}`).toBe(1);
      const containers = (podSpecOf(backends[0] as K8sObject) as unknown as PodSpec).containers;
      for (const p of spec(svc).ports as {
        name: string;
        port: number;
        targetPort?: number | string;
      }[]) {
        expect(
          resolvePort(containers, p.targetPort ?? p.port),
          `${svc.metadata.name}:${p.name}`,
        ).toBeDefined();
      }
    }
    for (const w of workloads(objects)) {
      const containers = (podSpecOf(w) as unknown as PodSpec).containers;
      for (const c of containers) {
        for (const probe of [c.readinessProbe, c.livenessProbe, c.startupProbe]) {
          const ref = probe?.grpc?.port ?? probe?.tcpSocket?.port ?? probe?.httpGet?.port;
          if (ref !== undefined)
            expect(resolvePort(containers, ref), `${c.name} probe port ${ref}`).toBeDefined();
        }
      }
    }
    const port = (name: string) => container.ports?.find((p) => p.name === name)?.containerPort;
    expect(String(port("grpc"))).toBe(SETTINGS.grpcAddress.default.split(":")[1]);
    expect(env.get("RISKGATE_GRPC_ADDRESS")?.value).toBe(`0.0.0.0:${port("grpc")}`);
    expect(env.get("RISKGATE_METRICS_ADDRESS")?.value).toBe(`0.0.0.0:${port("metrics")}`);
    for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe])
      expect(probe?.grpc?.port).toBe(port("grpc"));
    expect(HEALTH_SERVICES).toContain(container.readinessProbe?.grpc?.service);
    expect(container.readinessProbe?.grpc?.service).toBe("envoy.service.auth.v3.Authorization");
    const pods = (o: K8sObject) => (spec(o).podSelector as { matchLabels?: Obj }).matchLabels;
    for (const np of objects.filter((o) => o.kind === "NetworkPolicy")) {
      const selected = workloads(objects).filter((w) => labelsMatch(pods(np), podLabels(w)));
      expect(selected, `pods NetworkPolicy ${np.metadata.name} protects`).toHaveLength(1);
      const containers = (podSpecOf(selected[0] as K8sObject) as unknown as PodSpec).containers;
      for (const rule of spec(np).ingress as { ports: { port: number | string }[] }[])
        for (const p of rule.ports)
          expect(resolvePort(containers, p.port), `${np.metadata.name} ${p.port}`).toBeDefined();
    }
  });

  it("every environment variable is a riskgate setting or a standard one", () => {
    const known = new Set<string>(Object.values(SETTINGS).map((s) => s.env));
    for (const name of env.keys()) {
      expect(known.has(name) || /^(OTEL_|NODE_OPTIONS$)/.test(name), name).toBe(true);
    }
  });

  it("selectors: HPA, PDB and Services find the riskgate pods; the HPA owns the replica count", () => {
    const deployment = find(objects, "Deployment", "riskgate");
    const labels = podLabels(deployment);
    expect(
      labelsMatch((spec(deployment).selector as { matchLabels: Obj }).matchLabels, labels),
    ).toBe(true);
    expect(spec(deployment).replicas).toBeUndefined();
    const hpa = find(objects, "HorizontalPodAutoscaler", "riskgate");
    expect(spec(hpa).scaleTargetRef).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "riskgate",
    });
    expect(spec(hpa).minReplicas as number).toBeLessThanOrEqual(spec(hpa).maxReplicas as number);
    const pdb = find(objects, "PodDisruptionBudget", "riskgate");
    expect(labelsMatch((spec(pdb).selector as { matchLabels: Obj }).matchLabels, labels)).toBe(
      true,
    );
    expect(pod.serviceAccountName).toBe(find(objects, "ServiceAccount", "riskgate").metadata.name);
  });

  it("the policy: mounted as a directory, named by RISKGATE_POLICY, valid", () => {
    const policyPath = env.get("RISKGATE_POLICY")?.value ?? "";
    const mount = container.volumeMounts?.find((m) => policyPath.startsWith(`${m.mountPath}/`));
    expect(mount, "a mount holding RISKGATE_POLICY").toBeDefined();
    // a subPath mount never sees ConfigMap updates: live reload needs the directory
    expect(mount?.subPath).toBeUndefined();
    const volume = pod.volumes?.find((v) => v.name === mount?.name);
    const cm = find(objects, "ConfigMap", volume?.configMap?.name ?? "");
    const key = policyPath.slice((mount?.mountPath.length ?? 0) + 1);
    const text = (cm.data as Record<string, string>)[key] ?? "";
    expect(() => parsePolicy(text, `${overlay} ConfigMap ${key}`)).not.toThrow();
  });

  it("drains inside the grace period; runs non-root, read-only, without privileges", () => {
    // riskgate drains by itself (RISKGATE_DRAIN_DELAY_MS): a preStop sleep would double it
    expect(container.lifecycle?.preStop).toBeUndefined();
    const delay = Number(env.get("RISKGATE_DRAIN_DELAY_MS")?.value ?? 5000);
    const drain = (delay + Number(env.get("RISKGATE_SHUTDOWN_GRACE_MS")?.value)) / 1000;
    expect(pod.terminationGracePeriodSeconds ?? 30).toBeGreaterThan(drain);
    for (const w of workloads(objects)) {
      const ps = podSpecOf(w) as unknown as PodSpec & { automountServiceAccountToken?: boolean };
      expect(ps.securityContext, w.metadata.name).toMatchObject({
        runAsNonRoot: true,
        seccompProfile: { type: "RuntimeDefault" },
      });
      expect(ps.automountServiceAccountToken, w.metadata.name).toBe(false);
      for (const c of ps.containers) {
        expect(c.securityContext, c.name).toMatchObject({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ["ALL"] },
        });
        expect(c.resources?.requests, c.name).toHaveProperty("memory");
        expect(c.resources?.limits, c.name).toHaveProperty("memory");
      }
    }
    // the image's user: k8s runs it as the Dockerfile's numeric USER
    const user = /^USER\s+(\d+)/m.exec(readFileSync("Dockerfile", "utf8"))?.[1];
    expect(String(pod.securityContext?.runAsUser)).toBe(user);
  });

  it("headless and ClusterIP Services; every riskgate name an Envoy config dials exists", () => {
    const headless = find(objects, "Service", "riskgate-headless");
    expect(spec(headless).clusterIP).toBe("None");
    const grpc = (svc: K8sObject) =>
      (spec(svc).ports as { name: string; port: number }[]).find((p) => p.name === "grpc")?.port;
    for (const file of ["envoy/envoy.yaml", "envoy/sidecar.yaml"]) {
      const text = readFileSync(file, "utf8");
      const dialed = text.matchAll(
        new RegExp(
          `address: ([a-z0-9-]+)\\.${NAMESPACE}\\.svc\\.cluster\\.local\\s+port_value: (\\d+)`,
          "g",
        ),
      );
      for (const [, name, port] of dialed) {
        const svc = find(objects, "Service", name as string);
        expect(grpc(svc), `${file} dials ${name}:${port}`).toBe(Number(port));
      }
    }
    const svc = find(objects, "Service", "riskgate");
    const ports = spec(svc).ports as { name: string; appProtocol?: string }[];
    // meshes detect the protocol by the port name or appProtocol
    expect(ports.find((p) => p.name === "grpc")?.appProtocol).toBe("grpc");
  });
});

describe.runIf(kubectl)("overlays differ where they should", () => {
  it("dev: one pod trusting dev keys, its own Redis; image built locally", () => {
    const objects = render("k8s/overlays/dev");
    const env = envOf(riskgateContainer(objects));
    expect(env.get("RISKGATE_DEV")?.value).toBe("true");
    expect(env.get("REDIS_URL")?.value).toBe("redis://riskgate-redis:6379");
    const redis = find(objects, "Service", "riskgate-redis");
    expect((spec(redis).ports as { port: number }[])[0]?.port).toBe(6379);
    expect(spec(find(objects, "HorizontalPodAutoscaler", "riskgate"))).toMatchObject({
      minReplicas: 1,
      maxReplicas: 1,
    });
    expect(riskgateContainer(objects).image).toBe("riskgate:dev");
    // the ConfigMap carries policies/demo.yaml byte for byte (k8s/base/policy.yaml is a copy)
    expect((find(objects, "ConfigMap", "riskgate-policy").data as Obj)["policy.yaml"]).toBe(
      demoText,
    );
  });

  it("prod: more replicas, external Redis from a Secret, no dev keys, the JWKS policy", () => {
    const objects = render("k8s/overlays/prod");
    const env = envOf(riskgateContainer(objects));
    expect(env.has("RISKGATE_DEV")).toBe(false);
    expect(env.get("REDIS_URL")?.valueFrom).toEqual({
      secretKeyRef: { name: "riskgate-secrets", key: "redis-url" },
    });
    expect(env.get("RISKGATE_SUBJECT_SALT")?.valueFrom).toHaveProperty("secretKeyRef");
    expect(env.has("RISKGATE_REDIS_CLUSTER_NODES")).toBe(true);
    expect(objects.some((o) => o.metadata.name === "riskgate-redis")).toBe(false);
    const dev = render("k8s/overlays/dev");
    const minReplicas = (objs: K8sObject[]) =>
      spec(find(objs, "HorizontalPodAutoscaler", "riskgate")).minReplicas as number;
    expect(minReplicas(objects)).toBeGreaterThanOrEqual(3);
    expect(minReplicas(objects)).toBeGreaterThan(minReplicas(dev));
    expect(riskgateContainer(objects).image).toBe(`registry.example.com/riskgate:${version}`);
    const text =
      (find(objects, "ConfigMap", "riskgate-policy").data as Record<string, string>)[
        "policy.yaml"
      ] ?? "";
    const policy = parsePolicy(text, "prod policy.yaml");
    const demo = parsePolicy(demoText, "policies/demo.yaml");
    expect(policy.doc.identity.jwks?.uri).toMatch(/^https:\/\//);
    const withoutJwks = (doc: typeof demo.doc) => ({
      ...doc,
      identity: { ...doc.identity, jwks: undefined },
    });
    expect(withoutJwks(policy.doc)).toEqual(withoutJwks(demo.doc));
  });

  it("the base image is tagged with the package version", () => {
    const base = loadObjects("k8s/base/deployment.yaml")[0] as K8sObject;
    expect(containersOf([base])[0]?.image).toBe(`riskgate:${version}`);
  });
});

describe("Istio example", () => {
  // istio.mesh.v1alpha1 MeshConfig.ExtensionProvider.EnvoyExternalAuthorizationGrpcProvider and
  // security.istio.io AuthorizationPolicy fields (istio/api), to catch typos and HTTP-only fields
  const GRPC_PROVIDER = [
    "service",
    "port",
    "timeout",
    "failOpen",
    "statusOnError",
    "includeRequestBodyInCheck",
  ];
  const POLICY_SPEC = ["selector", "targetRef", "targetRefs", "rules", "action", "provider"];
  const OPERATION = [
    "hosts",
    "notHosts",
    "ports",
    "notPorts",
    "methods",
    "notMethods",
    "paths",
    "notPaths",
  ];
  const mesh = parse(readFileSync("k8s/istio/extension-provider.yaml", "utf8")) as {
    spec: { meshConfig: { extensionProviders: { name: string; envoyExtAuthzGrpc: Obj }[] } };
  };
  const policy = loadObjects("k8s/istio/authorization-policy.yaml")[0] as K8sObject;

  it.runIf(kubectl)(
    "registers riskgate's Service as a gRPC ext_authz provider that fails closed",
    () => {
      const provider = mesh.spec.meshConfig.extensionProviders.find((p) => p.name === "riskgate");
      const grpc = provider?.envoyExtAuthzGrpc as Obj;
      for (const key of Object.keys(grpc)) expect(GRPC_PROVIDER, key).toContain(key);
      const objects = render("k8s/overlays/prod");
      const svc = find(objects, "Service", String(grpc.service).split(".")[0] ?? "");
      expect(grpc.service).toBe(`${svc.metadata.name}.${svc.metadata.namespace}.svc.cluster.local`);
      expect(grpc.port).toBe(
        (spec(svc).ports as { name: string; port: number }[]).find((p) => p.name === "grpc")?.port,
      );
      expect(grpc).toMatchObject({ failOpen: false, statusOnError: "503" });
      const envoy = readFileSync("envoy/envoy.yaml", "utf8");
      expect(envoy).toContain(`timeout: ${grpc.timeout}`); // the same budget as the Envoy configs
    },
  );

  it("a CUSTOM AuthorizationPolicy names that provider and skips health checks", () => {
    expect(policy.apiVersion).toMatch(/^security\.istio\.io\/v1(beta1)?$/);
    expect(policy.kind).toBe("AuthorizationPolicy");
    const s = spec(policy);
    for (const key of Object.keys(s)) expect(POLICY_SPEC, key).toContain(key);
    expect(s.action).toBe("CUSTOM");
    expect((s.provider as { name: string }).name).toBe(
      mesh.spec.meshConfig.extensionProviders[0]?.name,
    );
    const operations = (s.rules as { to: { operation: Obj }[] }[]).flatMap((r) =>
      r.to.map((t) => t.operation),
    );
    for (const op of operations)
      for (const key of Object.keys(op)) expect(OPERATION, key).toContain(key);
    expect(operations.flatMap((o) => (o.notPaths as string[]) ?? [])).toContain("/healthz");
  });
});
