// `wedlm serve`: the OpenAI-compatible HTTP server (src/server/) on one model, until SIGINT or
// SIGTERM, which drain in-flight requests and exit with status 0.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <thread>

#include "cli/commands.h"
#include "server/server.h"
#include "util/error.h"

namespace wedlm::cli {

namespace {

struct ServeFlags {
  server::ServerOptions options;
  bool no_prefix_cache = false;
};

void run(ServeFlags& f) {
  f.options.batch.prefix_cache = !f.no_prefix_cache;
  f.options.engine.show_progress = true;

  // Signals are taken by one thread with sigtimedwait rather than a handler, so shutdown can
  // lock, wait and join. The mask must be set before the engine and HTTP threads exist: they
  // inherit it, and a signal delivered to one of them would kill the process.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  server::Server server(f.options);
  std::fprintf(stderr, "listening on http://%s:%d\n", f.options.host.c_str(), server.port());
  std::fflush(stderr);

  std::atomic<bool> serving{true};
  std::thread drainer;
  std::thread watcher([&] {
    const timespec tick{0, 100'000'000};
    int received = 0;
    while (serving.load()) {
      const int sig = sigtimedwait(&signals, nullptr, &tick);
      if (sig < 0) continue;
      if (++received == 1) {
        std::fprintf(stderr, "%s: draining in-flight requests (again to exit now)\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
        drainer = std::thread([&] { server.shutdown(); });
      } else {
        std::fprintf(stderr, "exiting without draining\n");
        std::_Exit(1);
      }
    }
  });
  server.run();
  serving.store(false);
  watcher.join();
  if (drainer.joinable()) drainer.join();
  std::fprintf(stderr, "server stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (completions, chat, SSE streaming, metrics)");
  static ServeFlags flags;
  server::ServerOptions& o = flags.options;
  cmd->add_option("-m,--model", o.engine.model, "Model directory or Hugging Face id")->required();
  cmd->add_option("--host", o.host, "Address to listen on");
  cmd->add_option("--port", o.port, "Port (0: any free port, printed on start)")->check(CLI::Range(0, 65535));
  cmd->add_option("--api-key", o.api_key, "Require 'Authorization: Bearer KEY' on /v1/*");
  cmd->add_option("--device", o.engine.device, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->add_option("--context", o.engine.context, "KV cache slots per sequence: prompt + output")->check(CLI::Range(1, 1 << 22));
  cmd->add_option("--max-sequences", o.batch.max_sequences, "Sequences decoding at once")->check(CLI::Range(1, 4096));
  cmd->add_option("--kv-blocks", o.batch.kv_blocks, "KV blocks in the pool (0: derived)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--block-size", o.batch.block_size, "Cache slots per KV block")->check(CLI::Range(1, 4096));
  cmd->add_option("--max-batch-rows", o.batch.max_batch_rows, "Rows per forward; longer prefills are chunked")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_flag("--no-prefix-cache", flags.no_prefix_cache, "Do not reuse KV blocks of shared prompt prefixes");
  cmd->add_option("--served-model-name", o.served_model_name, "Model id in the API (default: the --model argument)");
  cmd->add_option("--max-body-bytes", o.max_body_bytes, "Largest request body; larger gets 413")->check(CLI::PositiveNumber);
  cmd->add_option("--http-threads", o.http_threads, "HTTP worker threads (0: max(64, 2 x max-sequences) + 16)")
      ->check(CLI::NonNegativeNumber);
  cmd->callback([] { run(flags); });
}

}  // namespace wedlm::cli
