/* config.h — YAML config files (libyaml) into a mimo_spec.
 * Checks everything that can be checked without compiling the graph:
 * unknown keys, wrong types, bad enum names, missing required keys. Graph
 * errors (unknown `from` names, cycles, shapes, unused layers) are found by
 * mimo_graph_compile, which names the same file:line:column. */
#ifndef MIMO_CONFIG_H
#define MIMO_CONFIG_H

#include "mimo/api.h"

#include "mimo/spec.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Parses the YAML text `text` (len bytes) named `file` in messages, applies
 * the n_sets overrides "key.path=value" (value is YAML: 0.1, relu, [a, b])
 * and fills *out (defaults first). Returns 0 or MIMO_EINVAL/MIMO_ENOMEM with
 * a message "FILE:LINE:COL: what was expected". On error *out is freed. */
MIMO_API int mimo_config_parse(const char *text, size_t len, const char *file,
                      const char *const *sets, int n_sets, mimo_spec *out);

/* Reads the file at path and calls mimo_config_parse. A missing or
 * unreadable file is MIMO_EIO naming the path. */
MIMO_API int mimo_config_load(const char *path, const char *const *sets, int n_sets,
                     mimo_spec *out);

#ifdef __cplusplus
}
#endif
#endif
