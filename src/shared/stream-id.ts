// Event ids are ordered the same way by the server and every client: the client package owns the comparison.
export { compareStreamIds, STREAM_ORIGIN } from "@pulse/client";
