import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { RiskgateError } from "../errors.js";
import type { ApiKeyFiles } from "./api-keys/key-files.js";
import type { IdentifierDeps } from "./identity.js";
import type { Policy } from "./policy.js";

/**
 * What the policy's identity sources need from files it names (relative to the policy file):
 * the live API keys of `identity.api_keys.file`, the introspection client's secret. Rejects,
 * holding nothing new, when one cannot be read.
 */
export async function identityFilesOf(
  policy: Policy,
  apiKeyFiles: ApiKeyFiles,
): Promise<Pick<IdentifierDeps, "apiKeys" | "introspection">> {
  const base = dirname(policy.source);
  const keyFile = policy.doc.identity.api_keys?.file;
  const secretFile = policy.doc.identity.introspection?.client_secret_file;
  return {
    ...(keyFile === undefined ? {} : { apiKeys: await apiKeyFiles.open(resolve(base, keyFile)) }),
    ...(secretFile === undefined
      ? {}
      : {
          introspection: {
            clientSecret: await readClientSecret(policy, resolve(base, secretFile)),
          },
        }),
  };
}

async function readClientSecret(policy: Policy, file: string): Promise<string> {
  try {
    return (await readFile(file, "utf8")).trim();
  } catch (err) {
    throw new RiskgateError(
      "RISKGATE_POLICY_UNREADABLE",
      `${policy.source}: identity.introspection.client_secret_file ${file} is not readable`,
      { file },
      { cause: err },
    );
  }
}
