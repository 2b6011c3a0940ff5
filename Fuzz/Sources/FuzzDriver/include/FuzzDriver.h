#ifndef FUZZ_DRIVER_H
#define FUZZ_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// Runs libFuzzer's driver with `callback` as the fuzz target. SwiftPM links executables with
/// `main` defined as `<Target>_main`, so the targets define that symbol and start libFuzzer here
/// instead of relying on libFuzzer's own `main`.
int fuzz_driver_run(int argc, char **argv, int (*callback)(const uint8_t *data, size_t size));

#endif
