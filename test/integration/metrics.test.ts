/**
 * The metrics endpoint (--listen-metrics-urls): /metrics in Prometheus'
 * text format with etcd's metric names, and /health.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "./cluster.js";
import { CLUSTER_START_TIMEOUT_MS, withLogs } from "./support.js";
import { httpGet, metricValue } from "./tools.js";

describe("the metrics endpoint", () => {
  let cluster: Cluster | undefined;
  const run = (body: () => Promise<void>) => () => withLogs(() => cluster, body);

  beforeAll(async () => {
    cluster = await Cluster.start({ metrics: true });
  }, CLUSTER_START_TIMEOUT_MS);
  afterAll(async () => {
    await cluster?.stop();
  });

  it("reports a leader everywhere and leadership on exactly the leader, and answers /health", run(async () => {
    const { leader } = await cluster!.waitForLeader(10_000);
    const leading: string[] = [];
    for (const member of cluster!.members) {
      const metrics = await httpGet(`${member.metricsUrl}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metricValue(metrics.body, "etcd_server_has_leader"), member.name).toBe(1);
      const isLeader = metricValue(metrics.body, "etcd_server_is_leader");
      expect([0, 1]).toContain(isLeader);
      if (isLeader === 1) leading.push(member.name);
      expect(metricValue(metrics.body, "etcd_server_term")).toBeGreaterThanOrEqual(2);
      const health = await httpGet(`${member.metricsUrl}/health`);
      expect(health.status).toBe(200);
      expect(JSON.parse(health.body)).toMatchObject({ health: "true" });
      expect((await httpGet(`${member.metricsUrl}/nothing-here`)).status).toBe(404);
    }
    expect(leading).toEqual([leader.name]);
  }));
});
