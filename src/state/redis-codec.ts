import { keyText, type OpResult, type StoreOp } from "./store.js";

/** One argument of the store script. */
export type Arg = string | number;

/**
 * Each op's type letter and numeric params, comma-separated (the script's ARGV[1]); its string
 * params go in `strings`, one argument each, in op order.
 */
const ENCODE: {
  readonly [K in StoreOp["op"]]: (op: Extract<StoreOp, { op: K }>, strings: string[]) => string;
} = {
  // a limited window says whether it counts in its letter, so it takes no more params
  window: (op) =>
    op.limit === undefined
      ? `w,${op.windowMs},${op.cost}`
      : `${op.cost > 0 ? "L" : "l"},${op.windowMs},${op.limit}`,
  count: (op) => `c,${op.cost},${op.ttlMs}`,
  distinct: (op, strings) => {
    strings.push(op.member);
    return `d,${op.windowMs}`;
  },
  swap: (op, strings) => {
    strings.push(op.value);
    return `s,${op.ttlMs}`;
  },
  get: () => "g",
  member: (op, strings) => {
    strings.push(op.member);
    return `m,${op.ttlMs},${op.max}`;
  },
  has: (op, strings) => {
    strings.push(op.member);
    return "h";
  },
  baseline: (op) => `b,${op.bucketMs},${op.alpha},${op.ttlMs},${op.cost}`,
};

/**
 * The script's keys (one per op, in op order) and arguments for a group of ops: ARGV[1] the
 * ops' specs, then their string params.
 */
export function encodeOps(
  prefix: string,
  ops: readonly StoreOp[],
): { keys: string[]; args: Arg[] } {
  const keys: string[] = new Array(ops.length);
  const strings: string[] = [];
  let spec = "";
  for (let i = 0; i < ops.length; i++) {
    const op = ops[i] as StoreOp;
    keys[i] = keyText(prefix, op.key);
    const params = (ENCODE[op.op] as (op: StoreOp, strings: string[]) => string)(op, strings);
    spec = i === 0 ? params : `${spec},${params}`;
  }
  return { keys, args: [spec, ...strings] };
}

/** Reads the script's flat reply back into one result per op. */
export function decode(ops: readonly StoreOp[], flat: unknown[]): OpResult<StoreOp>[] {
  let i = 0;
  const num = () => Number(flat[i++]);
  const str = () => String(flat[i++]);
  return ops.map((op): OpResult<StoreOp> => {
    switch (op.op) {
      case "window":
        return { count: num(), resetMs: num() };
      case "count":
      case "distinct":
        return { count: num() };
      case "swap":
      case "get": {
        const has = num() === 1;
        const value = str();
        return { previous: has ? value : null };
      }
      case "member":
      case "has":
        return { isNew: num() === 1, size: num() };
      case "baseline":
        return { current: num(), mean: num(), variance: num(), samples: num() };
      default:
        throw new TypeError(`unknown store op ${(op as { op: string }).op}`);
    }
  });
}
