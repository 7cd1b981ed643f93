/** The httpOnly cookie holding a browser's session token. */
export const SESSION_COOKIE = "pulse_session";
