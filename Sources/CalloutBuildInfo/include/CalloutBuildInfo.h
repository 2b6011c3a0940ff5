#ifndef CALLOUT_BUILD_INFO_H
#define CALLOUT_BUILD_INFO_H

/// The commit this binary was built from, as Package.swift found it ("unknown" when not built
/// from a git checkout and CALLOUT_PROXY_COMMIT was not set).
const char *callout_build_commit(void);

#endif
