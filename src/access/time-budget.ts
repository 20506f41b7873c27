import { afterPendingIo } from "../deadline.js";

/**
 * Races `work` against `budgetMs` of wall time: "budget" when the time ran out first. The timer
 * starts before the work does and is cancelled whichever wins. Without a budget (replay, whose
 * clock is the recorded one) the work simply runs, with no promise of its own around it.
 */
export function withinBudget<T>(
  budgetMs: number | undefined,
  work: () => Promise<T>,
): Promise<T | "budget"> {
  if (budgetMs === undefined) return work();
  let cancel: (() => void) | undefined;
  const overBudget = new Promise<"budget">((resolve) => {
    cancel = afterPendingIo(budgetMs, () => resolve("budget"));
  });
  return Promise.race([work(), overBudget]).finally(() => cancel?.());
}
