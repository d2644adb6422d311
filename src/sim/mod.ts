export { runSimulation, Simulation, NODE_IDS_MAX, type SimulationOptions, type SimulationResult, type SimulationCounters } from "./cluster.js";
export { SafetyChecker, digestBytes, type Violation, type SafetyProperty, type LogView } from "./checkers.js";
export { EventQueue } from "./event-queue.js";
export { SimNetwork, PARTITION_KINDS, type NetworkConfig, type PartitionKind } from "./network.js";
export { drawSwarm, describeSwarm, CLUSTER_SIZES, type SwarmConfig, type ClusterSize } from "./swarm.js";
export { runSeeds, formatFailure, formatCounters, PLANTED_FAULTS, type PlantedFault, type SeedRunOptions, type SeedRunSummary } from "./runner.js";
