// The wire protocol's constants live in the client package, which the server and every client share.
export { TOKEN_EXPIRED } from "@pulse/client";
