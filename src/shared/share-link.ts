/**
 * Where a share link's token travels: in the fragment (`/share#<token>`), which browsers
 * never send to a server, so no access log, proxy or Referer holds it. Shared by the server,
 * which hands out links, and the browser, which reads them.
 */
export const SHARE_PAGE_PATH = "/share";

export function shareLinkPath(token: string): string {
  return `${SHARE_PAGE_PATH}#${token}`;
}

/** The old form, `/shared/<token>`, whose token did reach the server in the path. */
export const OLD_SHARE_LINK_PATH = /^\/shared\/([^/?#]+)\/?(?:[?#].*)?$/;
