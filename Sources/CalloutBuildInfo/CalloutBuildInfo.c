#include "CalloutBuildInfo.h"

// Package.swift defines CALLOUT_PROXY_COMMIT as a string literal; see its buildCommit().
#ifndef CALLOUT_PROXY_COMMIT
#define CALLOUT_PROXY_COMMIT "unknown"
#endif

const char *callout_build_commit(void) { return CALLOUT_PROXY_COMMIT; }
