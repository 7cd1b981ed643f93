import type { PulseRouter } from "@pulse/client";
import type { inferRouterInputs, inferRouterOutputs } from "@trpc/server";
import type { AppRouter } from "@/server/trpc/root";

/**
 * `tsc --noEmit` fails here when `@pulse/client`'s generated `PulseRouter` and the server's
 * `AppRouter` disagree on any procedure's input or output (each must be assignable to the
 * other): the generator's printing is checked, not only its output's freshness.
 */
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
type Assert<T extends true> = T;

export type InputsMatch = Assert<Same<inferRouterInputs<PulseRouter>, inferRouterInputs<AppRouter>>>;
export type OutputsMatch = Assert<Same<inferRouterOutputs<PulseRouter>, inferRouterOutputs<AppRouter>>>;
