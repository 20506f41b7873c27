import { readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { parseAllDocuments } from "yaml";

/**
 * The part of kustomize the manifests in k8s/ use, so `npm test` can render every overlay
 * without the kustomize binary: `resources` (files and directories), `namespace`,
 * `configMapGenerator` (files, `behavior: create | replace`) with `generatorOptions.
 * disableNameSuffixHash`, `images` (newName/newTag), and `patches` given by `path` as
 * strategic merge patches. Anything else in a kustomization throws, so the renderer can never
 * silently disagree with kustomize: extend it when the manifests need more.
 */
export type K8sObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [key: string]: unknown };
};

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  resources?: string[];
  patches?: { path: string }[];
  configMapGenerator?: { name: string; behavior?: string; files?: string[]; literals?: string[] }[];
  generatorOptions?: { disableNameSuffixHash?: boolean };
  images?: { name: string; newName?: string; newTag?: string }[];
}

const SUPPORTED = new Set([
  "apiVersion",
  "kind",
  "namespace",
  "resources",
  "patches",
  "configMapGenerator",
  "generatorOptions",
  "images",
]);

/** Kinds that live outside namespaces (the subset that could appear here). */
const CLUSTER_SCOPED = new Set(["Namespace", "ClusterRole", "ClusterRoleBinding", "StorageClass"]);

/** Strategic merge keys of the lists these manifests patch (from the Kubernetes API types). */
const MERGE_KEYS: Record<string, string> = {
  containers: "name",
  initContainers: "name",
  env: "name",
  volumes: "name",
  volumeMounts: "mountPath",
  imagePullSecrets: "name",
  topologySpreadConstraints: "topologyKey",
};

/** Reads every object of a multi-document YAML file. */
export function loadObjects(file: string): K8sObject[] {
  return parseAllDocuments(readFileSync(file, "utf8"))
    .map((d) => {
      if (d.errors.length > 0) throw new Error(`${file}: ${d.errors[0]?.message}`);
      return d.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

/** Renders the kustomization in `dir` (what `kubectl kustomize dir` prints, as objects). */
export function render(dir: string): K8sObject[] {
  const k = loadObjects(join(dir, "kustomization.yaml"))[0] as unknown as Kustomization;
  const unknown = Object.keys(k).filter((key) => !SUPPORTED.has(key));
  if (unknown.length > 0)
    throw new Error(`${dir}: kustomize features not rendered here: ${unknown}`);
  const objects: K8sObject[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    objects.push(...(statSync(path).isDirectory() ? render(path) : loadObjects(path)));
  }
  for (const gen of k.configMapGenerator ?? []) {
    // generatorOptions apply per kustomization: an overlay replacing a ConfigMap needs its own
    if (k.generatorOptions?.disableNameSuffixHash !== true)
      throw new Error(`${dir}: name suffix hashes are not rendered here (disableNameSuffixHash)`);
    const data: Record<string, string> = {};
    for (const f of gen.files ?? []) {
      const [key, file] = f.includes("=") ? (f.split("=") as [string, string]) : [basename(f), f];
      data[key] = readFileSync(join(dir, file), "utf8");
    }
    for (const l of gen.literals ?? []) {
      const at = l.indexOf("=");
      data[l.slice(0, at)] = l.slice(at + 1);
    }
    const behavior = gen.behavior ?? "create";
    const existing = objects.findIndex(
      (o) => o.kind === "ConfigMap" && o.metadata.name === gen.name,
    );
    const cm: K8sObject = {
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: { name: gen.name },
      data,
    };
    if (behavior === "create") {
      if (existing >= 0) throw new Error(`${dir}: ConfigMap ${gen.name} already exists`);
      objects.push(cm);
    } else if (behavior === "replace") {
      if (existing < 0) throw new Error(`${dir}: no ConfigMap ${gen.name} to replace`);
      cm.metadata = { ...(objects[existing] as K8sObject).metadata, name: gen.name };
      objects[existing] = cm;
    } else {
      throw new Error(`${dir}: configMapGenerator behavior ${behavior} is not rendered here`);
    }
  }
  for (const p of k.patches ?? []) {
    const keys = Object.keys(p);
    if (keys.length !== 1 || keys[0] !== "path")
      throw new Error(`${dir}: only patches given by path (strategic merge) are rendered here`);
    for (const patch of loadObjects(join(dir, p.path))) {
      const target = objects.find(
        (o) => o.kind === patch.kind && o.metadata.name === patch.metadata.name,
      );
      if (target === undefined)
        throw new Error(`${dir}: patch ${p.path} targets no ${patch.kind}/${patch.metadata.name}`);
      strategicMerge(target, patch);
    }
  }
  for (const image of k.images ?? []) {
    for (const container of containersOf(objects)) {
      const [name, tag] = splitImage(String(container.image));
      if (name !== image.name) continue;
      container.image = `${image.newName ?? name}:${image.newTag ?? tag}`;
    }
  }
  if (k.namespace !== undefined) {
    for (const o of objects) {
      if (!CLUSTER_SCOPED.has(o.kind)) o.metadata.namespace = k.namespace;
    }
  }
  return objects;
}

function splitImage(image: string): [string, string] {
  const at = image.lastIndexOf(":");
  return at > image.lastIndexOf("/")
    ? [image.slice(0, at), image.slice(at + 1)]
    : [image, "latest"];
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

const isMap = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === "object" && !Array.isArray(v);

/**
 * A strategic merge patch: maps merge, `null` deletes a key, lists with a known merge key merge
 * item by item (new items are appended), other lists are replaced.
 */
export function strategicMerge(
  target: Record<string, unknown>,
  patch: Record<string, unknown>,
): void {
  for (const [key, value] of Object.entries(patch)) {
    const current = target[key];
    if (value === null) {
      delete target[key];
    } else if (Array.isArray(value) && Array.isArray(current) && MERGE_KEYS[key] !== undefined) {
      const mergeKey = MERGE_KEYS[key];
      for (const item of value as Record<string, unknown>[]) {
        const same = (current as Record<string, unknown>[]).find(
          (c) => isMap(c) && isMap(item) && c[mergeKey] === item[mergeKey],
        );
        if (same !== undefined) strategicMerge(same, item);
        else current.push(item);
      }
    } else if (isMap(value) && isMap(current)) {
      strategicMerge(current, value);
    } else {
      target[key] = value;
    }
  }
}
