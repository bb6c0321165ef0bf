/**
 * Benchmark 4, reconnect storm: every hollow site's leaf link is cut at once (iptables, hack/fault.sh partition);
 * once the provider sees every hollow node EdgeConnected=False, changes are made in the cloud (one pod deleted and one
 * created per node); then every link is healed at once. Measured from the heal: every node EdgeConnected=True again,
 * and every change applied (the deleted pods gone from the API, which needs the edge's confirmation; the new pods
 * Ready).
 */
import type { Cluster } from './cluster.js';
import type { HollowFleet } from './fleet.js';
import { nowMs, sleep } from './stats.js';

export interface StormResult {
  nodes: number;
  /** Partition until every node EdgeConnected=False (s). */
  disconnectedS: number;
  deleted: number;
  created: number;
  /** From the heal (all links) until every node EdgeConnected=True (s). */
  reconnectedS: number;
  /** From the heal until every deleted pod is gone from the API (s). */
  deletesAppliedS: number;
  /** From the heal until every new pod is Ready (s). */
  createsAppliedS: number;
  /** From the heal until all of the above (s). */
  allAppliedS: number;
  /** Left undone at the timeout. */
  notReconnected: number;
  notDeleted: number;
  notReady: number;
}

const round = (x: number) => Math.round(x * 10) / 10;

export async function reconnectStorm(
  fleet: HollowFleet,
  cluster: Cluster,
  label: string,
  log: (line: string) => void,
  timeoutMs = 300_000,
): Promise<StormResult> {
  const nodes = fleet.nodeNames();
  const state = (want: string) => () => nodes.every((n) => cluster.connected.get(n) === want);
  const tP = nowMs();
  await fleet.partitionAll();
  log(`storm: ${fleet.sites.length} hollow sites cut at once (${Math.round(nowMs() - tP)} ms for the rules)`);
  const down = await cluster.until(state('False'), 90_000);
  const disconnectedS = down ? round((nowMs() - tP) / 1000) : NaN;
  log(
    `storm: ${down ? `all ${nodes.length} nodes EdgeConnected=False after ${disconnectedS} s` : 'NOT every node went EdgeConnected=False'}`,
  );

  // One pod deleted per node (the first live one) and one created, while cut off.
  const live = new Map<string, string>();
  for (const [name, p] of cluster.pods) {
    const node = /^hp-(hollow-\d+)-/.exec(name)?.[1];
    if (node && p.gone === undefined && !live.has(node)) live.set(node, name);
  }
  const toDelete = [...live.values()];
  const toCreate = nodes.map((node) => ({ name: `hs-${node}`, node }));
  await Promise.all([cluster.deletePods(toDelete), cluster.createPods(toCreate, label)]);
  log(`storm: ${toDelete.length} pods deleted, ${toCreate.length} created while cut off`);
  await sleep(5_000);

  const tH = nowMs();
  await fleet.healAll();
  const since = () => round((nowMs() - tH) / 1000);
  let reconnectedS = NaN;
  let deletesAppliedS = NaN;
  let createsAppliedS = NaN;
  const notReconnected = () => nodes.filter((n) => cluster.connected.get(n) !== 'True').length;
  const notDeleted = () => toDelete.filter((n) => cluster.pods.get(n)?.gone === undefined).length;
  const notReady = () => toCreate.filter((p) => cluster.pods.get(p.name)?.ready === undefined).length;
  await cluster.until(() => {
    if (Number.isNaN(reconnectedS) && notReconnected() === 0) reconnectedS = since();
    if (Number.isNaN(deletesAppliedS) && notDeleted() === 0) deletesAppliedS = since();
    if (Number.isNaN(createsAppliedS) && notReady() === 0) createsAppliedS = since();
    return ![reconnectedS, deletesAppliedS, createsAppliedS].some(Number.isNaN);
  }, timeoutMs);
  const result = {
    nodes: nodes.length,
    disconnectedS,
    deleted: toDelete.length,
    created: toCreate.length,
    reconnectedS,
    deletesAppliedS,
    createsAppliedS,
    allAppliedS: Math.max(reconnectedS, deletesAppliedS, createsAppliedS),
    notReconnected: notReconnected(),
    notDeleted: notDeleted(),
    notReady: notReady(),
  };
  log(`storm: healed; connected ${reconnectedS} s, deletes ${deletesAppliedS} s, creates ${createsAppliedS} s after the heal`);
  return result;
}
