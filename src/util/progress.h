#pragma once
// A one-line progress display on stderr for long jobs (loading a 16 GB checkpoint). It redraws
// only when stderr is a terminal, at most ten times a second, so logs and pipes stay clean.
#include <cstddef>
#include <string>

#include "util/timer.h"

namespace wedlm {

class Progress {
 public:
  Progress(std::string label, std::size_t total_items, std::size_t total_bytes);
  void advance(std::size_t items, std::size_t bytes);
  // Clears the line and prints a one-line summary (always, terminal or not) when `summary` is set.
  void finish(bool summary);

 private:
  void draw();

  std::string label_;
  std::size_t total_items_, total_bytes_;
  std::size_t done_items_ = 0, done_bytes_ = 0;
  bool on_terminal_;
  Stopwatch clock_;
  double last_draw_ = -1.0;
};

}  // namespace wedlm
