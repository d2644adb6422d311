/**
 * `cairn start`: the composition root of one member. It builds the node from
 * its configuration, attaches the client API and the metrics endpoint, and
 * on SIGTERM/SIGINT hands leadership away before it stops.
 */
import { createServer, type Server } from "node:http";
import { CairnNode, NodeStartError } from "../server/node.js";
import { NodeMetrics } from "../server/metrics.js";
import type { NodeConfig } from "./config.js";
import { createLogger, layerLogger } from "./logger.js";
import { attachClientApi } from "./client-api.js";

export async function runStart(config: NodeConfig): Promise<number> {
  const logger = createLogger(config.logLevel, config.name);
  const metrics = new NodeMetrics();
  let node: CairnNode;
  try {
    node = await CairnNode.start({
      name: config.name,
      dataDir: config.dataDir,
      listenPeerUrl: config.listenPeerUrls[0].href.replace(/\/$/, ""),
      peerUrls: config.initialAdvertisePeerUrls.map((url) => url.href.replace(/\/$/, "")),
      clientUrls: config.advertiseClientUrls.map((url) => url.href.replace(/\/$/, "")),
      initialCluster: new Map([...config.initialCluster].map(([name, urls]) => [name, urls.map((url) => url.href.replace(/\/$/, ""))])),
      initialClusterState: config.initialClusterState,
      initialClusterToken: config.initialClusterToken,
      heartbeatIntervalMs: config.heartbeatIntervalMs,
      electionTimeoutMs: config.electionTimeoutMs,
      snapshotCount: config.snapshotCount,
      snapshotBytes: config.snapshotBytes,
      walRepair: config.walRepair,
      forceNewCluster: config.forceNewCluster,
      peerTls: config.peerTls.certFile === "" && config.peerTls.trustedCaFile === "" ? undefined : {
        certFile: config.peerTls.certFile === "" ? undefined : config.peerTls.certFile,
        keyFile: config.peerTls.keyFile === "" ? undefined : config.peerTls.keyFile,
        trustedCaFile: config.peerTls.trustedCaFile === "" ? undefined : config.peerTls.trustedCaFile,
        clientCertAuth: config.peerTls.clientCertAuth,
      },
      logger: layerLogger(logger),
      metrics,
      onRemoved: () => process.kill(process.pid, "SIGTERM"),
      onFatal: (error) => {
        logger.fatal({ err: error }, `stopping: ${error.message}`);
        process.stderr.write(`cairn start: fatal: ${error.message}\n`);
        logger.flush();
        process.exit(1);
      },
    });
  } catch (error) {
    // Refusing to start is loud and names what is wrong (a damaged WAL names the file and offset).
    logger.fatal({ err: error }, `cannot start: ${(error as Error).message}`);
    process.stderr.write(`cairn start: ${(error as Error).message}\n`);
    logger.flush();
    return error instanceof NodeStartError ? 2 : 1;
  }
  let api: Awaited<ReturnType<typeof attachClientApi>>;
  try {
    api = await attachClientApi(node, config, logger, metrics);
  } catch (error) {
    // E.g. an unreadable --cert-file, or a client port already taken: say which, and stop the member cleanly.
    logger.fatal({ err: error }, `cannot serve clients: ${(error as Error).message}`);
    process.stderr.write(`cairn start: cannot serve clients: ${(error as Error).message}\n`);
    logger.flush();
    await node.stop();
    return 2;
  }
  const metricsServers: Server[] = [];
  for (const url of config.listenMetricsUrls) {
    const server = createServer((request, response) => {
      if (request.url === "/metrics") {
        void metrics.render().then((text) => {
          response.writeHead(200, { "content-type": metrics.registry.contentType });
          response.end(text);
        });
      } else if (request.url === "/health") {
        const healthy = node.group.leader() !== 0n;
        response.writeHead(healthy ? 200 : 503, { "content-type": "application/json" });
        response.end(JSON.stringify({ health: String(healthy), reason: healthy ? "" : "no leader" }) + "\n");
      } else {
        response.writeHead(404).end();
      }
    });
    await new Promise<void>((resolve) => server.listen(Number(url.port), url.hostname, resolve));
    metricsServers.push(server);
  }
  logger.info(`ready: clients on ${config.listenClientUrls.map((url) => url.href).join(", ")}`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info(`${signal}: stopping`);
      try {
        await node.transferLeadershipAway(config.electionTimeoutMs * 2);
      } catch (error) {
        logger.warn(`leadership transfer failed: ${(error as Error).message}`);
      }
      await api.close();
      for (const server of metricsServers) server.close();
      await node.stop();
      metrics.close();
      logger.info("stopped");
      logger.flush();
      resolve(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
  });
}
