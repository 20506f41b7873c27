import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import ts from "typescript";
import type { K8sObject } from "./k8s-objects.js";

/**
 * Validation of Kubernetes objects against the API schemas `kubernetes-models` ships: its
 * `validate()` (JSON schema: types, required fields, enums), plus what that schema lets through
 * and the API server would only warn about and drop: unknown fields (a typo such as
 * `readinesProbe` silently loses the probe). Known fields come from the model's TypeScript
 * declarations (generated from the same OpenAPI document), read with the TypeScript compiler.
 */

/** apiVersion/kind -> [module, class] of kubernetes-models. */
const MODELS: Record<string, [string, string]> = {
  "v1/Namespace": ["v1", "Namespace"],
  "v1/ServiceAccount": ["v1", "ServiceAccount"],
  "v1/ConfigMap": ["v1", "ConfigMap"],
  "v1/Secret": ["v1", "Secret"],
  "v1/Service": ["v1", "Service"],
  "apps/v1/Deployment": ["apps/v1", "Deployment"],
  "autoscaling/v2/HorizontalPodAutoscaler": ["autoscaling/v2", "HorizontalPodAutoscaler"],
  "policy/v1/PodDisruptionBudget": ["policy/v1", "PodDisruptionBudget"],
  "networking.k8s.io/v1/NetworkPolicy": ["networking.k8s.io/v1", "NetworkPolicy"],
  "networking.k8s.io/v1/Ingress": ["networking.k8s.io/v1", "Ingress"],
};

export interface SchemaIssue {
  readonly path: string;
  readonly message: string;
}

export interface K8sSchemas {
  /** Problems of one object; empty when valid. */
  check(object: K8sObject): Promise<SchemaIssue[]>;
}

/** Loads the model classes and their declarations once. */
export function createK8sSchemas(): K8sSchemas {
  const require = createRequire(import.meta.url);
  const pkg = dirname(require.resolve("kubernetes-models/package.json"));
  const entries = Object.entries(MODELS);
  const source = entries
    .map(
      ([, [mod, cls]], i) =>
        `import type { I${cls} as T${i} } from "kubernetes-models/${mod}/${cls}";`,
    )
    .concat(`export interface All { ${entries.map((_, i) => `m${i}: T${i};`).join(" ")} }`)
    .join("\n");
  const virtual = join(pkg, "..", "..", "__riskgate_k8s_models__.ts");
  const options: ts.CompilerOptions = {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, onError, create) =>
    name === virtual
      ? ts.createSourceFile(name, source, lang)
      : getSourceFile(name, lang, onError, create);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === virtual || fileExists(name);
  const program = ts.createProgram([virtual], options, host);
  const checker = program.getTypeChecker();
  const file = program.getSourceFile(virtual);
  if (file === undefined) throw new Error("kubernetes-models declarations did not load");
  const all = file.statements.find(ts.isInterfaceDeclaration);
  if (all === undefined) throw new Error("kubernetes-models declarations did not load");
  const allType = checker.getTypeAtLocation(all);
  const typeOf = new Map<string, ts.Type>();
  entries.forEach(([key], i) => {
    const prop = allType.getProperty(`m${i}`);
    if (prop === undefined) throw new Error(`no declaration for ${key}`);
    typeOf.set(key, checker.getTypeOfSymbol(prop));
  });

  /** Reports every key of `value` that `type` does not declare, recursively. */
  function known(type: ts.Type, value: unknown, path: string, out: SchemaIssue[]): void {
    if (value === null || typeof value !== "object") return;
    const candidates = (type.isUnion() ? type.types : [type]).filter(
      (t) => !(t.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)),
    );
    if (candidates.some((t) => t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown))) return;
    if (Array.isArray(value)) {
      const array = candidates.find((t) => checker.isArrayType(t));
      if (array === undefined) return;
      const element = checker.getTypeArguments(array as ts.TypeReference)[0];
      if (element === undefined) return;
      value.forEach((item, i) => {
        known(element, item, `${path}[${i}]`, out);
      });
      return;
    }
    const objectType = candidates.find(
      (t) => t.flags & ts.TypeFlags.Object && !checker.isArrayType(t),
    );
    if (objectType === undefined) return;
    const index = checker.getIndexInfoOfType(objectType, ts.IndexKind.String);
    for (const [key, v] of Object.entries(value)) {
      const where = path === "" ? key : `${path}.${key}`;
      const prop = objectType.getProperty(key);
      if (prop !== undefined) known(checker.getTypeOfSymbol(prop), v, where, out);
      else if (index !== undefined) known(index.type, v, where, out);
      else out.push({ path: where, message: "unknown field" });
    }
  }

  return {
    async check(object) {
      const key = `${object.apiVersion}/${object.kind}`;
      const model = MODELS[key];
      const type = typeOf.get(key);
      if (model === undefined || type === undefined)
        return [{ path: "", message: `no schema for ${key} here: add it to MODELS` }];
      const mod = (await import(`kubernetes-models/${model[0]}`)) as Record<
        string,
        new (
          data: unknown,
        ) => { validate(): void }
      >;
      const Model = mod[model[1]];
      if (Model === undefined) return [{ path: "", message: `kubernetes-models has no ${key}` }];
      const issues: SchemaIssue[] = [];
      try {
        new Model(object).validate();
      } catch (err) {
        issues.push({ path: "", message: (err as Error).message });
      }
      known(type, object, "", issues);
      return issues;
    },
  };
}
