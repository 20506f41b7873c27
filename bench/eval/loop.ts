import { once } from "node:events";
import type { Writable } from "node:stream";
import type { EngineVerdict, EvalEngine } from "./engine.js";
import { type TokenMinter, toCheckRequest } from "./generate.js";
import type { LabelRecord, Reaction, SimRequest, TokenSpec } from "./model.js";
import type { Rng } from "./rng.js";
import type { DecisionRecord } from "./score.js";
import { H, MIN, S, sec } from "./sim.js";

/**
 * The closed loop: every actor's planned requests go to the engine in time order, and each
 * verdict changes what the actor does next, as such clients do (model.ts, `Reaction`):
 * people step up with MFA (a new login: fresh `auth_time`, `amr` with mfa) and retry, wait out
 * a 429, log in again once after a denial and give up for half an hour when that fails too;
 * machines honour Retry-After and drop (or, as a job, abort the run on) what is refused;
 * attackers cannot answer a challenge, a thief cannot log in again, and a stuffing tool moves to
 * the next account. The same seed gives the same run: reactions draw from each actor's own
 * stream and ties are broken by plan order.
 */
export interface LoopOptions {
  /** Whether actors react (false: the plan is sent as it is, the open-loop replay). */
  readonly react: boolean;
  readonly rngFor: (actor: string) => Rng;
  /** Where the requests, labels and decisions are written, one JSON line each (optional). */
  readonly out?: { requests: Writable; labels: Writable; decisions: Writable };
}

export interface LoopOutcome {
  readonly labels: LabelRecord[];
  readonly decisions: DecisionRecord[];
  /** Legitimate people (not machine tokens), for challenges per person-week. */
  readonly people: ReadonlySet<string>;
  /** Challenges answered by a new login with MFA, and browser challenges solved. */
  readonly stepUps: number;
  /** Planned requests dropped by a reaction (aborted runs, skipped accounts, a person who gave up). */
  readonly dropped: number;
  /** The same, per population or family. */
  readonly droppedByGroup: ReadonlyMap<string, number>;
}

interface Item {
  req: SimRequest;
  tries: number;
}

interface ActorState {
  readonly queue: Item[];
  pos: number;
  readonly rng: Rng;
  /** A person's login after a step-up: replaces the planned session it answered for. */
  stepped?: { replaces: number; login: number; amr: readonly string[] };
  lastDeny: number;
  recentStepUps: number[];
  suppressUntil: number;
  readonly abortedRuns: Set<string>;
}

const reactionOf = (r: SimRequest): Reaction =>
  r.reaction ??
  (r.token.clientId !== undefined ? "machine" : r.label === "legit" ? "person" : "attacker");

/** A person's token as it is after a step-up: the new login refreshed hourly. */
function personToken(st: ActorState, t: TokenSpec, at: number): TokenSpec {
  const s = st.stepped;
  if (s === undefined || t.authTime === undefined) return t;
  if (t.authTime * S > s.login) {
    st.stepped = undefined; // a later login of the plan supersedes the step-up
    return t;
  }
  const iat = s.login + Math.floor((at - s.login) / H) * H;
  return { ...t, iat: sec(iat), exp: sec(iat + H), authTime: sec(s.login), amr: s.amr };
}

/** A machine fetches a new token when its cached one would be expired at the retry. */
function machineToken(t: TokenSpec, at: number): TokenSpec {
  if ((t.exp - 30) * S > at) return t;
  const life = t.exp - t.iat;
  return { ...t, iat: sec(at), exp: sec(at) + life };
}

/** A small binary heap of actors by the time of their next request (ties: insertion order). */
class ActorHeap {
  private readonly a: { t: number; seq: number; actor: string }[] = [];
  private seq = 0;
  push(t: number, actor: string): void {
    const a = this.a;
    a.push({ t, seq: this.seq++, actor });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [a[i], a[p]] = [a[p] as (typeof a)[number], a[i] as (typeof a)[number]];
      i = p;
    }
  }
  pop(): string | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (top === undefined || last === undefined) return undefined;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(l, m)) m = l;
        if (r < a.length && this.less(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m] as (typeof a)[number], a[i] as (typeof a)[number]];
        i = m;
      }
    }
    return top.actor;
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i] as { t: number; seq: number };
    const y = this.a[j] as { t: number; seq: number };
    return x.t < y.t || (x.t === y.t && x.seq < y.seq);
  }
}

function insert(st: ActorState, item: Item): void {
  let i = st.queue.length;
  while (i > st.pos && (st.queue[i - 1] as Item).req.t > item.req.t) i--;
  st.queue.splice(i, 0, item);
}

/** Moves the actor's remaining requests (of one run, or all) later by `ms`, keeping order. */
function delay(st: ActorState, ms: number, run?: string): void {
  const rest = st.queue.slice(st.pos);
  for (const it of rest)
    if (run === undefined || it.req.run === run) it.req = { ...it.req, t: it.req.t + ms };
  rest.sort((x, y) => x.req.t - y.req.t);
  st.queue.splice(st.pos, rest.length, ...rest);
}

/** JSON lines into a stream, written in chunks (one write a line is most of a run's time). */
function lineWriter(w: Writable | undefined): {
  add(v: unknown): Promise<void>;
  flush(): Promise<void>;
} {
  let lines: string[] = [];
  const flush = async () => {
    if (w === undefined || lines.length === 0) return;
    const chunk = `${lines.join("\n")}\n`;
    lines = [];
    if (!w.write(chunk)) await once(w, "drain");
  };
  return {
    async add(v) {
      if (w === undefined) return;
      lines.push(JSON.stringify(v));
      if (lines.length >= 2000) await flush();
    },
    flush,
  };
}

/** Runs the plan through the engine, reacting to each verdict. */
export async function runClosedLoop(
  plan: readonly SimRequest[],
  engine: EvalEngine,
  minter: TokenMinter,
  opts: LoopOptions,
): Promise<LoopOutcome> {
  const actors = new Map<string, ActorState>();
  for (const req of plan) {
    let st = actors.get(req.actor);
    if (st === undefined) {
      st = {
        queue: [],
        pos: 0,
        rng: opts.rngFor(req.actor),
        lastDeny: Number.NEGATIVE_INFINITY,
        recentStepUps: [],
        suppressUntil: Number.NEGATIVE_INFINITY,
        abortedRuns: new Set(),
      };
      actors.set(req.actor, st);
    }
    st.queue.push({ req, tries: 0 });
  }
  const heap = new ActorHeap();
  for (const [actor, st] of actors) heap.push((st.queue[0] as Item).req.t, actor);
  const labels: LabelRecord[] = [];
  const decisions: DecisionRecord[] = [];
  const people = new Set<string>();
  let stepUps = 0;
  let dropped = 0;
  const droppedByGroup = new Map<string, number>();
  let n = 0;
  const writers = [
    lineWriter(opts.out?.requests),
    lineWriter(opts.out?.labels),
    lineWriter(opts.out?.decisions),
  ];
  for (let actor = heap.pop(); actor !== undefined; actor = heap.pop()) {
    const st = actors.get(actor) as ActorState;
    const item = st.queue[st.pos++] as Item;
    const r = item.req;
    const reaction = opts.react ? reactionOf(r) : "attacker";
    const skip =
      (reaction === "person" && r.t < st.suppressUntil) ||
      (r.run !== undefined && st.abortedRuns.has(r.run));
    if (skip) {
      dropped++;
      droppedByGroup.set(r.group, (droppedByGroup.get(r.group) ?? 0) + 1);
    } else {
      const token =
        r.token.clientId !== undefined ? machineToken(r.token, r.t) : personToken(st, r.token, r.t);
      const sent: SimRequest = token === r.token ? r : { ...r, token };
      const id = `eval-${String(++n).padStart(7, "0")}`;
      const check = toCheckRequest(sent, id, await minter.jwtOf(sent.token));
      const verdict = await engine.decide(JSON.stringify(check));
      const label: LabelRecord = { request_id: id, label: r.label, group: r.group, actor: r.actor };
      labels.push(label);
      decisions.push(verdict.record);
      if (r.label === "legit" && reactionOf(r) === "person") people.add(r.actor);
      await writers[0]?.add(check);
      await writers[1]?.add(label);
      await writers[2]?.add(verdict.record);
      if (opts.react && !isAllowed(verdict)) {
        const outcome = react(st, { ...item, req: sent }, reaction, verdict);
        stepUps += outcome.stepUp ? 1 : 0;
      }
    }
    const next = st.queue[st.pos];
    if (next !== undefined) heap.push(next.req.t, actor);
  }
  for (const w of writers) await w.flush();
  return { labels, decisions, people, stepUps, dropped, droppedByGroup };
}

/** An allow (also shadow mode's) needs no reaction; a header-style challenge asks the app to step up. */
function isAllowed(v: EngineVerdict): boolean {
  return v.record.decision === "allow";
}

/** What one actor does after a refused (or challenged) request. */
function react(
  st: ActorState,
  item: Item,
  reaction: Reaction,
  v: EngineVerdict,
): { stepUp: boolean } {
  const r = item.req;
  const rng = st.rng;
  const kind = v.record.decision;
  const retry = (at: number) =>
    insert(st, { req: { ...r, t: Math.round(at) }, tries: item.tries + 1 });
  const wait = () =>
    Math.max((v.retryAfterSeconds ?? 0) * S, 2 ** Math.min(item.tries, 6) * S) + rng.int(0, 1000);
  switch (reaction) {
    case "person": {
      if (kind === "throttle") {
        if (item.tries < 5) retry(r.t + wait());
        return { stepUp: false };
      }
      if (kind === "challenge") {
        st.recentStepUps = st.recentStepUps.filter((x) => x > r.t - 10 * MIN);
        if (st.recentStepUps.length >= 2) {
          st.suppressUntil = r.t + 30 * MIN; // stepped up twice and still asked: gives up for now
          return { stepUp: false };
        }
        st.recentStepUps.push(r.t);
        if (v.record.challenge_style === "interactive") {
          // solves the browser challenge (its clearance cookie is not carried: see engine.ts)
          retry(r.t + rng.logNormal(8 * S, 0.5));
          return { stepUp: true };
        }
        const login = r.t + rng.logNormal(40 * S, 0.5); // password, then the MFA prompt
        st.stepped = { replaces: r.token.authTime ?? 0, login, amr: ["pwd", "mfa"] };
        retry(login + rng.int(300, 2000));
        return { stepUp: true };
      }
      if (kind === "deny") {
        if (r.t - st.lastDeny < 10 * MIN) st.suppressUntil = r.t + 30 * MIN;
        else {
          const login = r.t + rng.logNormal(60 * S, 0.5);
          st.stepped = { replaces: r.token.authTime ?? 0, login, amr: r.token.amr ?? ["pwd"] };
          retry(login + rng.int(300, 2000));
        }
        st.lastDeny = r.t;
      }
      return { stepUp: false };
    }
    case "machine":
      if (kind === "throttle" && item.tries < 5) retry(r.t + wait());
      return { stepUp: false };
    case "machine-job":
      if (kind === "throttle" && item.tries < 5) {
        const w = wait();
        delay(st, w, r.run);
        retry(r.t + w);
      } else if (r.run !== undefined) st.abortedRuns.add(r.run);
      return { stepUp: false };
    case "stuffing":
      if (kind === "throttle") {
        const w = wait();
        delay(st, w);
        if (item.tries < 3) retry(r.t + w);
      } else if (r.run !== undefined) st.abortedRuns.add(r.run);
      return { stepUp: false };
    case "attacker":
      if (kind === "throttle") {
        const w = wait();
        delay(st, w);
        if (item.tries < 3) retry(r.t + w);
      }
      return { stepUp: false };
  }
}
