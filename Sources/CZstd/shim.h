// zstd and its dictionary builder, from the system (Debian: libzstd-dev).
#include <zstd.h>
#include <zdict.h>
