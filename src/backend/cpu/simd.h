#pragma once
// x86 intrinsics. GCC 12's AVX-512 headers pass `_mm512_undefined_*` values as the unused
// pass-through operand of extract/convert builtins, which -Wuninitialized reports at every inlined
// call site (a known false positive); the warning is silenced for the files that use intrinsics.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
