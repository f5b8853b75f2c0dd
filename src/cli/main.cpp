#include <cstdio>
#include <exception>

#include "cli/commands.h"
#include "util/error.h"

int main(int argc, char** argv) {
  CLI::App app{"wedlm: inference engine for WeDLM diffusion language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "wedlm 0.1.0");
  wedlm::cli::add_generate_command(app);
  wedlm::cli::add_chat_command(app);
  wedlm::cli::add_serve_command(app);
  wedlm::cli::add_inspect_command(app);
  wedlm::cli::add_forward_command(app);
  wedlm::cli::add_bench_command(app);
  wedlm::cli::add_synth_command(app);
  wedlm::cli::add_tokenizer_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const wedlm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
    return 2;
  }
  return 0;
}
