/*
 * A local Apache Solr for development and tests, started from the Maven artifacts of
 * Solr's own test framework (no Solr download or install needed).
 *
 *   java -cp <classpath> SolrLauncher standalone <solr home> [port]
 *   java -cp <classpath> SolrLauncher cloud <base dir> <nodes>
 *
 * Standalone runs one JettySolrRunner on the given solr home; cloud runs a
 * MiniSolrCloudCluster (N Solr nodes plus an embedded ZooKeeper). Every node binds
 * 127.0.0.1 on an ephemeral port (or the port given). When ready, one line per node
 * "SOLR_URL <base url>" is printed, then "ZK_HOST <address>" in cloud mode, then
 * "READY". The process stops cleanly on SIGTERM/SIGINT, or when standard input is
 * closed if started with the system property devcommands.stdinWatch=true (so a parent
 * that dies never leaves Solr running).
 */

import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.concurrent.CountDownLatch;

import org.apache.solr.cloud.MiniSolrCloudCluster;
import org.apache.solr.embedded.JettyConfig;
import org.apache.solr.embedded.JettySolrRunner;

public class SolrLauncher {

  private static final String STANDALONE_SOLR_XML =
      "<solr>\n"
          + "  <str name=\"configSetBaseDir\">${configSetBaseDir:configsets}</str>\n"
          + "  <str name=\"coreRootDirectory\">${coreRootDirectory:cores}</str>\n"
          + "  <str name=\"allowPaths\">${solr.allowPaths:}</str>\n"
          + "</solr>\n";

  public static void main(String[] args) throws Exception {
    if (args.length < 2) {
      System.err.println("usage: SolrLauncher standalone <solr home> [port] | cloud <base dir> <nodes>");
      System.exit(2);
    }
    String mode = args[0];
    Path dir = Paths.get(args[1]).toAbsolutePath();
    Files.createDirectories(dir);
    System.setProperty("solr.log.dir", dir.resolve("logs").toString());
    CountDownLatch stop = new CountDownLatch(1);
    Runnable stopper;

    if (mode.equals("standalone")) {
      int port = args.length > 2 ? Integer.parseInt(args[2]) : 0;
      Path solrXml = dir.resolve("solr.xml");
      if (!Files.exists(solrXml)) {
        Files.writeString(solrXml, STANDALONE_SOLR_XML);
      }
      Files.createDirectories(dir.resolve("configsets"));
      Files.createDirectories(dir.resolve("cores"));
      JettyConfig config = JettyConfig.builder().setPort(port).setContext("/solr")
          .stopAtShutdown(false).build();
      JettySolrRunner jetty = new JettySolrRunner(dir.toString(), config);
      jetty.start();
      System.out.println("SOLR_URL " + jetty.getBaseUrl());
      stopper = () -> {
        try {
          jetty.stop();
        } catch (Exception e) {
          e.printStackTrace();
        }
      };
    } else if (mode.equals("cloud")) {
      int nodes = args.length > 2 ? Integer.parseInt(args[2]) : 2;
      JettyConfig config = JettyConfig.builder().setPort(0).setContext("/solr")
          .stopAtShutdown(false).build();
      MiniSolrCloudCluster cluster = new MiniSolrCloudCluster(nodes, dir, config);
      for (JettySolrRunner jetty : cluster.getJettySolrRunners()) {
        System.out.println("SOLR_URL " + jetty.getBaseUrl());
      }
      System.out.println("ZK_HOST " + cluster.getZkServer().getZkAddress());
      stopper = () -> {
        try {
          cluster.shutdown();
        } catch (Exception e) {
          e.printStackTrace();
        }
      };
    } else {
      System.err.println("unknown mode " + mode + ": expected standalone or cloud");
      System.exit(2);
      return;
    }

    Thread hook = new Thread(() -> {
      stopper.run();
      stop.countDown();
    }, "devcommands-solr-stop");
    Runtime.getRuntime().addShutdownHook(hook);

    if (Boolean.getBoolean("devcommands.stdinWatch")) {
      Thread watcher = new Thread(() -> {
        try {
          InputStream in = System.in;
          while (in.read() != -1) {
            // Anything written is ignored: only the end of input counts.
          }
        } catch (Exception ignored) {
          // A broken pipe means the parent is gone, too.
        }
        System.exit(0);  // runs the shutdown hook
      }, "devcommands-stdin-watch");
      watcher.setDaemon(true);
      watcher.start();
    }
    System.out.println("READY");
    System.out.flush();
    stop.await();
  }
}
