import { describe, expect, it } from "vitest";
import { createCircuitBreaker } from "../../src/circuit-breaker.js";

function breaker() {
  let now = 0;
  const states: string[] = [];
  const b = createCircuitBreaker({
    failures: 3,
    openMs: 1000,
    now: () => now,
    onStateChange: (s) => states.push(s),
  });
  return { b, states, advance: (ms: number) => (now += ms) };
}

describe("the circuit breaker", () => {
  it("opens after consecutive failures, one at a time", () => {
    const { b, states } = breaker();
    for (let i = 0; i < 3; i++) b.failure(b.acquire() as number);
    expect(b.state).toBe("open");
    expect(b.acquire()).toBeUndefined();
    expect(states).toEqual(["open"]);
  });

  it("counts calls that were in flight together once", () => {
    const { b } = breaker();
    const burst = Array.from({ length: 50 }, () => b.acquire() as number);
    for (const call of burst) b.failure(call);
    expect(b.state).toBe("closed");
    // later calls fail on their own: they count
    b.failure(b.acquire() as number);
    b.failure(b.acquire() as number);
    expect(b.state).toBe("open");
  });

  it("a success resets the count", () => {
    const { b } = breaker();
    b.failure(b.acquire() as number);
    b.failure(b.acquire() as number);
    b.success(b.acquire() as number);
    b.failure(b.acquire() as number);
    expect(b.state).toBe("closed");
  });

  it("half-opens after openMs for one probe, which closes or reopens it", () => {
    const { b, states, advance } = breaker();
    for (let i = 0; i < 3; i++) b.failure(b.acquire() as number);
    advance(999);
    expect(b.acquire()).toBeUndefined();
    advance(1);
    const probe = b.acquire() as number;
    expect(probe).toBeTypeOf("number");
    expect(b.state).toBe("half_open");
    expect(b.acquire()).toBeUndefined(); // one probe at a time
    b.failure(probe);
    expect(b.state).toBe("open");
    advance(1000);
    b.success(b.acquire() as number);
    expect(b.state).toBe("closed");
    expect(states).toEqual(["open", "half_open", "open", "half_open", "closed"]);
  });

  it("is not closed by a late success of a call sent before it opened", () => {
    const { b } = breaker();
    const early = b.acquire() as number;
    for (let i = 0; i < 3; i++) b.failure(b.acquire() as number);
    expect(b.state).toBe("open");
    b.success(early);
    expect(b.state).toBe("open");
    expect(b.acquire()).toBeUndefined();
  });

  it("keeps refusing when the observer throws", () => {
    let now = 0;
    const b = createCircuitBreaker({
      failures: 1,
      openMs: 10,
      now: () => now,
      onStateChange: () => {
        throw new Error("observer bug");
      },
    });
    b.failure(b.acquire() as number);
    expect(b.state).toBe("open");
    now = 10;
    expect(b.acquire()).toBeTypeOf("number");
  });
});
