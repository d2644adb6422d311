/**
 * Prometheus metrics of a node (prom-client), named after etcd's where one
 * exists so existing dashboards read them.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import { monitorEventLoopDelay } from "node:perf_hooks";

export class NodeMetrics {
  readonly registry = new Registry();
  readonly term = new Gauge({ name: "etcd_server_term", help: "The current Raft term.", registers: [this.registry] });
  readonly isLeader = new Gauge({ name: "etcd_server_is_leader", help: "1 when this member is the leader.", registers: [this.registry] });
  readonly hasLeader = new Gauge({ name: "etcd_server_has_leader", help: "1 when a leader is known.", registers: [this.registry] });
  readonly leaderChanges = new Counter({ name: "etcd_server_leader_changes_seen_total", help: "Leader changes seen.", registers: [this.registry] });
  readonly commitIndex = new Gauge({ name: "etcd_server_committed_index", help: "Raft commit index.", registers: [this.registry] });
  readonly appliedIndex = new Gauge({ name: "etcd_server_applied_index", help: "Index applied to the state machine.", registers: [this.registry] });
  readonly proposalsCommitted = new Counter({ name: "etcd_server_proposals_committed_total", help: "Proposals applied after commit.", registers: [this.registry] });
  readonly proposalsFailed = new Counter({ name: "etcd_server_proposals_failed_total", help: "Proposals refused or timed out.", registers: [this.registry] });
  readonly proposalSeconds = new Histogram({
    name: "cairn_proposal_duration_seconds", help: "From propose to applied.", registers: [this.registry],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
  });
  readonly walFsyncSeconds = new Histogram({
    name: "etcd_disk_wal_fsync_duration_seconds", help: "WAL write+fdatasync latency per Ready.", registers: [this.registry],
    buckets: [0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1.024],
  });
  readonly defragmentSeconds = new Histogram({
    name: "etcd_disk_backend_defrag_duration_seconds", help: "Whole defragmentation, copy included.", registers: [this.registry],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });
  readonly defragmentPauseSeconds = new Histogram({
    name: "cairn_defrag_write_pause_seconds", help: "How long a defragmentation held writes back (final replay, fsync and swap).", registers: [this.registry],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
  });
  readonly peerDropped = new Gauge({ name: "cairn_peer_messages_dropped", help: "Raft messages dropped by full peer queues.", labelNames: ["peer"], registers: [this.registry] });
  readonly grpcRequests = new Counter({ name: "grpc_server_handled_total", help: "Client RPCs handled.", labelNames: ["grpc_method", "grpc_code"], registers: [this.registry] });
  readonly grpcSeconds = new Histogram({
    name: "grpc_server_handling_seconds", help: "Client RPC latency.", labelNames: ["grpc_method"], registers: [this.registry],
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
  });
  readonly eventLoopLagSeconds = new Gauge({ name: "cairn_event_loop_lag_seconds", help: "p99 event-loop delay over the last scrape interval.", registers: [this.registry] });
  private readonly loopDelay = monitorEventLoopDelay({ resolution: 10 });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: "cairn_process_" });
    this.loopDelay.enable();
  }

  async render(): Promise<string> {
    this.eventLoopLagSeconds.set(this.loopDelay.percentile(99) / 1e9);
    this.loopDelay.reset();
    return this.registry.metrics();
  }

  close(): void {
    this.loopDelay.disable();
  }
}
