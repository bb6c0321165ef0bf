/**
 * Which provider shard serves a node (docs/decisions/0002-provider-sharding.md): FNV-1a (32 bit) of the node's name,
 * modulo the shard count. Stable across replicas, versions and restarts; the provider's shard Leases and the
 * `edgefarm status` column that names a node's replica both use this one function.
 */
export function shardOf(name: string, shards: number): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(name, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % shards;
}
