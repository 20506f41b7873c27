import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

/** One Kubernetes object as YAML gives it. */
export type K8sObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
};

/** Every object of a multi-document YAML text (`source` names it in errors). */
function parseObjects(text: string, source: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${source}: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** Reads every object of a multi-document YAML file. */
export function loadObjects(file: string): K8sObject[] {
  return parseObjects(readFileSync(file, "utf8"), file);
}

/**
 * True when `kubectl` (which ships kustomize) is on the PATH. Under CI=true its absence fails
 * the run; elsewhere the tests that need it are skipped with a message.
 */
export function kubectlAvailable(): boolean {
  try {
    execFileSync("kubectl", ["version", "--client"], { stdio: "ignore", timeout: 10_000 });
    return true;
  } catch {
    const message =
      "kubectl is not on the PATH; the Kubernetes manifest tests render k8s/ with " +
      "`kubectl kustomize` (not a Debian package: install it from Kubernetes' apt repository, " +
      "pkgs.k8s.io; see docs/getting-started.md)";
    if (process.env.CI === "true") throw new Error(message);
    console.warn(`SKIPPED: ${message}`);
    return false;
  }
}

/** The kustomization in `dir` rendered by the real kustomize (`kubectl kustomize dir`). */
export function render(dir: string): K8sObject[] {
  let out: string;
  try {
    out = execFileSync("kubectl", ["kustomize", dir], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
      timeout: 30_000,
    });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? "";
    throw new Error(`kubectl kustomize ${dir}: ${stderr.trim() || (err as Error).message}`);
  }
  return parseObjects(out, `kubectl kustomize ${dir}`);
}

/** Every container (and init container) of every workload's pod template. */
export function containersOf(objects: K8sObject[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const o of objects) {
    const spec = podSpecOf(o);
    if (spec === undefined) continue;
    for (const key of ["initContainers", "containers"]) {
      const list = spec[key];
      if (Array.isArray(list)) out.push(...(list as Record<string, unknown>[]));
    }
  }
  return out;
}

/** The pod spec of a workload (Deployment, StatefulSet, DaemonSet, Job) or Pod. */
export function podSpecOf(o: K8sObject): Record<string, unknown> | undefined {
  if (o.kind === "Pod") return o.spec as Record<string, unknown>;
  const template = (o.spec as { template?: { spec?: Record<string, unknown> } } | undefined)
    ?.template;
  return template?.spec;
}
