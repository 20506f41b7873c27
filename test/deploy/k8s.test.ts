import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { Deployment } from "kubernetes-models/apps/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { ConfigMap, Service, ServiceAccount } from "kubernetes-models/v1";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { parsePolicy } from "../../src/config/policy.js";

type Obj = Record<string, unknown> & {
  kind: string;
  apiVersion: string;
  metadata: { name: string };
};

/**
 * The small part of kustomize these manifests use: `resources` (files or directories with a
 * kustomization) and `patches` as strategic merges, where lists of objects with a `name` merge
 * by name (containers, env, ports, volumes) and other lists are replaced.
 */
function render(dir: string): Obj[] {
  const k = parseAllDocuments(readFileSync(join(dir, "kustomization.yaml"), "utf8"))[0]?.toJS() as {
    resources?: string[];
    patches?: { path: string }[];
  };
  const objects: Obj[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    if (r.endsWith(".yaml")) objects.push(...loadYaml(path));
    else objects.push(...render(path));
  }
  for (const p of k.patches ?? []) {
    for (const patch of loadYaml(join(dir, p.path))) {
      const target = objects.find(
        (o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name,
      );
      if (target === undefined)
        throw new Error(`${dir}: patch ${p.path} targets no ${patch.kind}/${patch.metadata.name}`);
      merge(target, patch);
    }
  }
  return objects;
}

function loadYaml(path: string): Obj[] {
  return parseAllDocuments(readFileSync(path, "utf8"))
    .map((d) => d.toJS() as Obj)
    .filter((o) => o !== null);
}

function merge(target: Record<string, unknown>, patch: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(patch)) {
    const current = target[key];
    if (
      Array.isArray(value) &&
      Array.isArray(current) &&
      value.every((v) => v && typeof v === "object" && "name" in v)
    ) {
      for (const item of value as Record<string, unknown>[]) {
        const same = (current as Record<string, unknown>[]).find((c) => c.name === item.name);
        if (same) merge(same, item);
        else current.push(item);
      }
    } else if (
      value &&
      typeof value === "object" &&
      !Array.isArray(value) &&
      current &&
      typeof current === "object"
    ) {
      merge(current as Record<string, unknown>, value as Record<string, unknown>);
    } else {
      target[key] = value;
    }
  }
}

const MODELS: Record<string, new (data: never) => { validate(): void }> = {
  "apps/v1/Deployment": Deployment,
  "v1/Service": Service,
  "v1/ServiceAccount": ServiceAccount,
  "v1/ConfigMap": ConfigMap,
  "autoscaling/v2/HorizontalPodAutoscaler": HorizontalPodAutoscaler,
  "policy/v1/PodDisruptionBudget": PodDisruptionBudget,
  "networking.k8s.io/v1/NetworkPolicy": NetworkPolicy,
};

const OVERLAYS = ["k8s/base", "k8s/overlays/dev", "k8s/overlays/prod"];

describe.each(OVERLAYS)("Kubernetes manifests: %s", (dir) => {
  const objects = render(dir);

  it("validates every object against the Kubernetes API schemas", () => {
    expect(objects.length).toBeGreaterThan(5);
    for (const o of objects) {
      const Model = MODELS[`${o.apiVersion}/${o.kind}`];
      expect(Model, `a schema for ${o.apiVersion} ${o.kind}`).toBeDefined();
      expect(
        () => new (Model as new (d: unknown) => { validate(): void })(o).validate(),
        `${o.kind}/${o.metadata.name}`,
      ).not.toThrow();
    }
  });

  it("agrees on ports: probes, container ports, Service target ports", () => {
    const deployments = objects.filter((o) => o.kind === "Deployment") as unknown as Deployment[];
    for (const svc of objects.filter((o) => o.kind === "Service") as unknown as Service[]) {
      const selector = svc.spec?.selector ?? {};
      const dep = deployments.find((d) =>
        Object.entries(selector).every(([k, v]) => d.spec?.template.metadata?.labels?.[k] === v),
      );
      expect(dep, `a Deployment behind Service ${svc.metadata?.name}`).toBeDefined();
      const ports = dep?.spec?.template.spec?.containers.flatMap((c) => c.ports ?? []) ?? [];
      for (const p of svc.spec?.ports ?? []) {
        const target = p.targetPort ?? p.port;
        expect(
          ports.some((cp) => cp.name === target || cp.containerPort === target),
          `${svc.metadata?.name}:${p.name} -> ${target}`,
        ).toBe(true);
      }
    }
    const riskgate = deployments.find((d) => d.metadata?.name === "riskgate");
    const container = riskgate?.spec?.template.spec?.containers.find((c) => c.name === "riskgate");
    const grpcPort = container?.ports?.find((p) => p.name === "grpc")?.containerPort;
    expect(grpcPort).toBe(9191);
    for (const probe of [
      container?.readinessProbe,
      container?.livenessProbe,
      container?.startupProbe,
    ]) {
      expect(probe?.grpc?.port).toBe(grpcPort);
    }
    const env = Object.fromEntries((container?.env ?? []).map((e) => [e.name, e.value]));
    expect(env.RISKGATE_GRPC_ADDRESS).toBe(`0.0.0.0:${grpcPort}`);
    expect(env.RISKGATE_METRICS_ADDRESS).toBe(
      `0.0.0.0:${container?.ports?.find((p) => p.name === "metrics")?.containerPort}`,
    );
    // the drain fits in the grace period: preStop (5 s) + RISKGATE_SHUTDOWN_GRACE_MS
    const grace = riskgate?.spec?.template.spec?.terminationGracePeriodSeconds ?? 30;
    expect(5 + Number(env.RISKGATE_SHUTDOWN_GRACE_MS) / 1000).toBeLessThan(grace);
    const sc = container?.securityContext;
    expect(sc).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(riskgate?.spec?.template.spec?.securityContext?.runAsNonRoot).toBe(true);
  });

  it("ships a policy that validates, identical to the demo policy but for the JWKS", () => {
    const cm = objects.find(
      (o) => o.kind === "ConfigMap" && o.metadata.name === "riskgate-policy",
    ) as unknown as ConfigMap;
    const text = cm.data?.["policy.yaml"] ?? "";
    const policy = parsePolicy(text, `${dir}/configmap policy.yaml`);
    expect(policy.doc.identity.jwks?.uri).toMatch(/^https:\/\//);
    const demo = parsePolicy(readFileSync("policies/demo.yaml", "utf8"), "policies/demo.yaml");
    expect({ ...policy.doc, identity: { ...policy.doc.identity, jwks: undefined } }).toEqual({
      ...demo.doc,
      identity: { ...demo.doc.identity, jwks: undefined },
    });
  });
});

describe("overlays", () => {
  it("dev runs one replica on its own Redis; prod more replicas on a Redis Cluster", () => {
    const env = (objs: Obj[]) => {
      const d = objs.find(
        (o) => o.kind === "Deployment" && o.metadata.name === "riskgate",
      ) as unknown as Deployment;
      return {
        replicas: d.spec?.replicas,
        env: d.spec?.template.spec?.containers[0]?.env?.map((e) => e.name) ?? [],
      };
    };
    const dev = render("k8s/overlays/dev");
    expect(env(dev)).toMatchObject({ replicas: 1 });
    expect(env(dev).env).toContain("REDIS_URL");
    expect(dev.some((o) => o.kind === "Service" && o.metadata.name === "riskgate-redis")).toBe(
      true,
    );
    const prod = render("k8s/overlays/prod");
    expect(env(prod).replicas).toBe(4);
    expect(env(prod).env).toEqual(
      expect.arrayContaining(["RISKGATE_REDIS_CLUSTER_NODES", "REDIS_URL"]),
    );
  });

  it("the Istio example names riskgate as a CUSTOM ext_authz provider", () => {
    const mesh = loadYaml("k8s/istio/mesh-config.yaml")[0] as unknown as {
      extensionProviders: { name: string; envoyExtAuthzGrpc: { service: string; port: number } }[];
    };
    const policy = loadYaml("k8s/istio/authorization-policy.yaml")[0] as unknown as {
      spec: { action: string; provider: { name: string } };
    };
    expect(policy.spec.action).toBe("CUSTOM");
    const provider = mesh.extensionProviders.find((p) => p.name === policy.spec.provider.name);
    expect(provider?.envoyExtAuthzGrpc.port).toBe(9191);
    expect(dirname("k8s/istio")).toBe("k8s");
  });
});
