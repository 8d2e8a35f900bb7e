/* version.c — the library version string, set by CMake. */
#include "mimo/version.h"

#ifndef MIMO_VERSION_STRING
#define MIMO_VERSION_STRING "unknown"
#endif

const char *mimo_version(void) { return MIMO_VERSION_STRING; }

int mimo_version_number(void) { return MIMO_VERSION_NUMBER; }
