/* Assertions for the libveil C tests: a failed check prints where and exits non-zero. */
#ifndef VEIL_TEST_CHECK_H
#define VEIL_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#include "veil.h"

#define CHECK(cond)                                                                \
  do {                                                                             \
    if (!(cond)) {                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);   \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

#define CHECK_RESULT(call, expected)                                               \
  do {                                                                             \
    veil_result r_ = (call);                                                       \
    if (r_ != (expected)) {                                                        \
      fprintf(stderr, "%s:%d: %s returned %d (%s), expected %s\n", __FILE__,       \
              __LINE__, #call, (int)r_, veil_result_str(r_), #expected);           \
      exit(1);                                                                     \
    }                                                                              \
  } while (0)

#define CHECK_OK(call) CHECK_RESULT(call, VEIL_RESULT_OK)

#endif
