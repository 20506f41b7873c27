/**
 * The hours of the day someone works, as one small stored value: a 24-bit mask of the UTC hours
 * seen on earlier days (`established`), the hours seen so far today (`pending`), the day they
 * were seen on and how many days were seen at all. An hour counts as worked only from the day
 * after it was first seen, so a night's first allowed requests cannot make that night's hour
 * usual while the night is still going on.
 *
 * Stored as text (`day:pending:established:days`) with the store's get and swap ops; a lost
 * update between two concurrent writers drops at most a bit the next request puts back.
 */
export interface WorkHours {
  /** Day number (UTC days since the epoch) of `pending`. */
  readonly day: number;
  readonly pending: number;
  readonly established: number;
  /** Distinct days with at least one trusted request. */
  readonly days: number;
}

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;
const ALL_HOURS = (1 << 24) - 1;

export const NO_HOURS: WorkHours = Object.freeze({ day: 0, pending: 0, established: 0, days: 0 });

/** UTC day number and hour of the day of a time. */
export function dayAndHour(now: number): { day: number; hour: number } {
  return { day: Math.floor(now / DAY_MS), hour: Math.floor((now % DAY_MS) / HOUR_MS) };
}

/** Reads a stored value; anything malformed (or absent) is no history. */
export function parseWorkHours(text: string | null | undefined): WorkHours {
  if (typeof text !== "string") return NO_HOURS;
  const parts = text.split(":").map(Number);
  if (parts.length !== 4 || !parts.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    return NO_HOURS;
  }
  const [day, pending, established, days] = parts as [number, number, number, number];
  return { day, pending: pending & ALL_HOURS, established: established & ALL_HOURS, days };
}

export function formatWorkHours(h: WorkHours): string {
  return `${h.day}:${h.pending}:${h.established}:${h.days}`;
}

/** The hours worked on days before `day` (today's hours count from tomorrow). */
export function hoursBefore(h: WorkHours, day: number): number {
  return h.day < day ? h.established | h.pending : h.established;
}

/** Whole days of history before `day`. */
export function daysBefore(h: WorkHours, day: number): number {
  return h.days === 0 ? 0 : h.day < day ? h.days : h.days - 1;
}

/** The value after a trusted request at `now`: the same object when nothing changes. */
export function learnHour(h: WorkHours, now: number): WorkHours {
  const { day, hour } = dayAndHour(now);
  const bit = 1 << hour;
  if (h.days > 0 && h.day === day) {
    return (h.pending & bit) !== 0 ? h : { ...h, pending: h.pending | bit };
  }
  if (h.days > 0 && h.day > day) return h; // a clock behind the stored day teaches nothing
  return { day, pending: bit, established: hoursBefore(h, day), days: h.days + 1 };
}

/** True when `hour`'s bit is set in `mask`. */
export function worksAt(mask: number, hour: number): boolean {
  return (mask & (1 << hour)) !== 0;
}
