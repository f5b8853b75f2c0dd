#include "decode/committed_output.h"

#include <gtest/gtest.h>

#include <stdexcept>

#include "decode/ar_decoder.h"
#include "util/error.h"

namespace wedlm {
namespace {

TEST(CommittedOutput, StopTokenIsKeptAndEnds) {
  CommittedOutput out({.max_tokens = 10, .stop_ids = {7, 9}, .kv_space = 100});
  EXPECT_EQ(out.commit(1), FinishReason::none);
  EXPECT_EQ(out.commit(9), FinishReason::stop);
  EXPECT_EQ(out.tokens(), (std::vector<int32_t>{1, 9}));
  EXPECT_THROW(out.commit(2), std::logic_error);
}

TEST(CommittedOutput, MaxTokensEndsWithLength) {
  CommittedOutput out({.max_tokens = 2, .stop_ids = {}, .kv_space = 100});
  EXPECT_EQ(out.commit(1), FinishReason::none);
  EXPECT_EQ(out.commit(2), FinishReason::length);
}

TEST(CommittedOutput, StopWinsOverLengthOnTheSameToken) {
  CommittedOutput out({.max_tokens = 1, .stop_ids = {5}, .kv_space = 100});
  EXPECT_EQ(out.commit(5), FinishReason::stop);
}

TEST(CommittedOutput, KvSpaceEndsWithLength) {
  CommittedOutput out({.max_tokens = 10, .stop_ids = {}, .kv_space = 2});
  EXPECT_EQ(out.kv_slots_left(), 2);
  EXPECT_EQ(out.commit(1), FinishReason::none);
  EXPECT_EQ(out.kv_slots_left(), 1);
  EXPECT_EQ(out.commit(1), FinishReason::length);
}

TEST(CommittedOutput, BadLimitsRejected) {
  EXPECT_THROW(CommittedOutput({.max_tokens = 0, .stop_ids = {}, .kv_space = 5}), Error);
  EXPECT_THROW(CommittedOutput({.max_tokens = 5, .stop_ids = {}, .kv_space = 0}), Error);
}

TEST(ArDecoder, OneTokenPerStepUntilStop) {
  ArDecoder ar({.max_tokens = 5, .stop_ids = {3}, .kv_space = 100});
  auto r = ar.accept(4);
  EXPECT_EQ(r.committed, (std::vector<int32_t>{4}));
  EXPECT_EQ(r.finish, FinishReason::none);
  r = ar.accept(3);
  EXPECT_EQ(r.finish, FinishReason::stop);
  EXPECT_TRUE(ar.finished());
  EXPECT_EQ(ar.committed(), (std::vector<int32_t>{4, 3}));
  EXPECT_THROW(ar.accept(1), std::logic_error);
}

}  // namespace
}  // namespace wedlm
