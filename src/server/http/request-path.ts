import { OLD_SHARE_LINK_PATH } from "../../shared/share-link";

/** The path of a request URL, without its query string. */
function pathOf(url: string | undefined): string {
  return (url ?? "/").split("?")[0]!;
}

/**
 * Whether a request's path holds a malformed percent-encoding (`/runs/%E0%A4%A`): Next.js
 * and tRPC cannot decode it and answer 500, so it is refused with 400 before either sees it.
 */
export function isMalformedPath(url: string | undefined): boolean {
  try {
    decodeURIComponent(pathOf(url));
    return false;
  } catch {
    return true;
  }
}

/**
 * A request's path as logs may hold it: no query string (it may carry a procedure's input)
 * and no share token from a link of the old form (`/shared/<token>`).
 */
export function loggablePath(url: string | undefined): string {
  const path = pathOf(url);
  return OLD_SHARE_LINK_PATH.test(path) ? "/shared/[redacted]" : path;
}
