export { runSimulation, runSimulationAsync, Simulation, NODE_IDS_MAX, type DiskFaults, type SimulationOptions, type SimulationResult, type SimulationCounters, type StorageMode } from "./cluster.js";
export { SafetyChecker, digestBytes, type Violation, type SafetyProperty, type LogView } from "./checkers.js";
export { EventQueue } from "./event-queue.js";
export { SimNetwork, PARTITION_KINDS, type NetworkConfig, type PartitionKind } from "./network.js";
export { drawSwarm, describeSwarm, CLUSTER_SIZES, type SwarmConfig, type ClusterSize } from "./swarm.js";
export { runSeeds, runSeedsAsync, formatFailure, formatCounters, PLANTED_FAULTS, WAL_PLANTED_FAULTS, type PlantedFault, type WalPlantedFault, type SeedRunOptions, type SeedRunSummary } from "./runner.js";
