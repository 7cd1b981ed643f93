/** cluster-key-slot (a dependency of ioredis) ships no types: the one function Pulse uses. */
declare module "cluster-key-slot" {
  /** The Redis Cluster hash slot of a key, honouring its `{hash tag}`. */
  function generate(key: string | Buffer): number;
  export default generate;
}
