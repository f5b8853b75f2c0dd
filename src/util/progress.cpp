#include "util/progress.h"

#include <unistd.h>

#include <cstdio>

#include <fmt/format.h>

namespace wedlm {

namespace {
double gigabytes(std::size_t bytes) { return static_cast<double>(bytes) / 1e9; }
}  // namespace

Progress::Progress(std::string label, std::size_t total_items, std::size_t total_bytes)
    : label_(std::move(label)),
      total_items_(total_items),
      total_bytes_(total_bytes),
      on_terminal_(::isatty(STDERR_FILENO) == 1) {}

void Progress::advance(std::size_t items, std::size_t bytes) {
  done_items_ += items;
  done_bytes_ += bytes;
  if (on_terminal_ && clock_.seconds() - last_draw_ >= 0.1) draw();
}

void Progress::draw() {
  last_draw_ = clock_.seconds();
  double pct = total_bytes_ ? 100.0 * static_cast<double>(done_bytes_) / static_cast<double>(total_bytes_) : 100.0;
  std::fputs(fmt::format("\r{}: {}/{} tensors, {:.2f}/{:.2f} GB ({:.0f}%)", label_, done_items_,
                         total_items_, gigabytes(done_bytes_), gigabytes(total_bytes_), pct)
                 .c_str(),
             stderr);
  std::fflush(stderr);
}

void Progress::finish(bool summary) {
  if (on_terminal_) std::fputs("\r\033[K", stderr);
  if (summary) {
    std::fputs(fmt::format("{}: {} tensors, {:.2f} GB in {:.2f} s\n", label_, done_items_,
                           gigabytes(done_bytes_), clock_.seconds())
                   .c_str(),
               stderr);
  }
}

}  // namespace wedlm
