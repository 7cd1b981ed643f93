/**
 * The dashboard runs inside Pulse's own HTTP server (src/server/main.ts), which also serves
 * tRPC and the WebSocket on the same port.
 *
 * @type {import("next").NextConfig}
 */
const nextConfig = {
  reactStrictMode: true,
  poweredByHeader: false,
  // Server packages with native or WebAssembly parts stay outside the bundle.
  serverExternalPackages: [
    "@electric-sql/pglite",
    "pglite-prisma-adapter",
    "@prisma/client",
    "bullmq",
    "ioredis",
    "pino",
    "@node-rs/argon2",
  ],
  // Types are checked by `npm test` (tsc over the whole project), not by every build that
  // `npm start` makes.
  typescript: { ignoreBuildErrors: true },
};

export default nextConfig;
