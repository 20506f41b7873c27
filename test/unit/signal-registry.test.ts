import { describe, expect, it } from "vitest";
import { createPipeline } from "../../src/access/pipeline.js";
import { policySchema } from "../../src/access/policy.js";
import { REASONS } from "../../src/access/reasons.js";
import { signalRows } from "../../src/access/reference.js";
import {
  checkSignalOrder,
  SIGNALS,
  SignalOrderError,
  signalReasons,
} from "../../src/access/signals/index.js";
import { populationPace } from "../../src/access/signals/population-pace.js";
import { NOTHING, type Signal } from "../../src/access/signals/signal.js";
import { subjectVelocity } from "../../src/access/signals/velocity.js";
import { createMemoryStore } from "../../src/state/memory-store.js";

/** A stateless signal that finds nothing, named `name`, running after `after`. */
function signal(name: string, after: string[] = [], key?: string): Signal {
  return {
    name,
    reasons: {},
    after,
    ...(key === undefined ? {} : { policy: { key, schema: policySchema } }),
    enabled: () => true,
    evaluate: () => NOTHING,
  };
}

/** What `fn` throws; undefined when it returns. */
function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe("the signal registry", () => {
  it("is in an order every signal's `after` agrees with", () => {
    expect(() => checkSignalOrder(SIGNALS)).not.toThrow();
    const at = (s: Signal) => SIGNALS.indexOf(s as (typeof SIGNALS)[number]);
    expect(populationPace.after).toContain(subjectVelocity.name);
    expect(at(populationPace)).toBeGreaterThan(at(subjectVelocity));
  });

  it("refuses a signal listed before one it must run after, with a typed error", () => {
    const err = thrown(() => checkSignalOrder([populationPace, subjectVelocity]));
    expect(err).toBeInstanceOf(SignalOrderError);
    expect(err).toBeInstanceOf(TypeError);
    expect(err).toMatchObject({
      code: "order",
      signals: ["velocity.population", "velocity.subject"],
    });
    // a pipeline is never built on such a list: the order is checked when it is
    expect(() =>
      createPipeline({
        store: createMemoryStore(),
        clock: () => 0,
        signals: [populationPace, subjectVelocity],
      }),
    ).toThrow(SignalOrderError);
  });

  it("refuses signals that must run after each other, naming the loop", () => {
    const err = thrown(() =>
      checkSignalOrder([signal("a", ["c"]), signal("b", ["a"]), signal("c", ["b"])]),
    );
    expect(err).toMatchObject({ code: "cycle", signals: ["a", "c", "b", "a"] });
    expect(thrown(() => checkSignalOrder([signal("a", ["a"])]))).toMatchObject({
      code: "cycle",
    });
  });

  it("refuses a name listed twice and a policy section claimed twice", () => {
    expect(thrown(() => checkSignalOrder([signal("a"), signal("a")]))).toMatchObject({
      code: "duplicate",
    });
    expect(
      thrown(() => checkSignalOrder([signal("a", [], "velocity"), signal("b", [], "velocity")])),
    ).toMatchObject({ code: "duplicate", signals: ["b"] });
  });

  it("lets a list leave out a signal another one runs after", () => {
    expect(() => checkSignalOrder([populationPace])).not.toThrow();
  });

  it("gives every policy section of `signals` one owner, and nothing else", () => {
    const owned = SIGNALS.flatMap((s) => (s.policy === undefined ? [] : [s.policy.key]));
    expect(new Set(owned).size).toBe(owned.length);
    const doc = policySchema.parse({
      version: 1,
      identity: { issuers: ["i"], audiences: ["a"] },
      tiers: { free: {} },
    });
    expect(Object.keys(doc.signals).sort()).toEqual(
      ["client_class", ...owned, "scoring_webhook"].sort(),
    );
  });

  it("puts each signal's reason codes, once, into the reason-code table", () => {
    const codes = SIGNALS.flatMap((s) => Object.keys(s.reasons));
    expect(new Set(codes).size).toBe(codes.length);
    expect(Object.keys(signalReasons()).sort()).toEqual([...codes].sort());
    for (const s of SIGNALS) {
      for (const [code, meaning] of Object.entries(s.reasons)) {
        expect(REASONS[code as keyof typeof REASONS]).toBe(meaning);
      }
    }
  });

  it("renders the signal table for the docs in running order", () => {
    const rows = signalRows();
    expect(rows).toHaveLength(SIGNALS.length);
    expect(rows[0]).toBe("| `velocity.subject` | `signals.velocity` | `velocity.subject` | - |");
    expect(rows).toContain(
      "| `velocity.population` | - | `velocity.population` | `velocity.subject` |",
    );
  });
});
