#pragma once
// Each `wedlm` subcommand lives in its own file and registers itself on the app here.
#include <CLI/CLI.hpp>

namespace wedlm::cli {

void add_inspect_command(CLI::App& app);
void add_forward_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_synth_command(CLI::App& app);
void add_tokenizer_commands(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_chat_command(CLI::App& app);
void add_serve_command(CLI::App& app);

}  // namespace wedlm::cli
