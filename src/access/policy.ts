import type { z } from "zod";
import { type LoadedPolicy, policyLoader } from "../config/policy.js";
import { policySchemaWith } from "../config/policy-schema.js";
import { REASONS } from "./reasons.js";
import { signalsBlock } from "./signals/index.js";

/**
 * The policy as the access engine reads it: config's schema with the `signals` block the
 * signal registry builds. Composed here, above both, so that config knows no signal.
 */
export const policySchema = policySchemaWith(signalsBlock(REASONS));

/** The policy as written (before defaults). */
export type PolicyInput = z.input<typeof policySchema>;
/** The validated, defaulted policy. */
export type PolicyDocument = z.output<typeof policySchema>;
/** One validated, frozen policy. A reload swaps the whole policy at once. */
export type Policy = LoadedPolicy<PolicyDocument>;

const loader = policyLoader(policySchema);
/** Reads, parses and validates a policy file. Throws a PolicyError naming every problem. */
export const loadPolicyFile: (file: string) => Promise<Policy> = loader.load;
/** Parses and validates policy YAML text; `source` names it in errors. */
export const parsePolicy: (text: string, source: string) => Policy = loader.parse;
