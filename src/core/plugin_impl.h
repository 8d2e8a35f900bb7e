/* plugin_impl.h — a plug-in's layer kind as the library sees it: the
 * registry entry of plugin.c (loading, checks, the registry) holding the
 * mimo_kind that plugin_kind.c (the adapter) fills so that the config
 * parser and the graph treat it as any kind of the table. */
#ifndef MIMO_CORE_PLUGIN_IMPL_H
#define MIMO_CORE_PLUGIN_IMPL_H

#include "core/kind.h"
#include "mimo/plugin.h"

/* A layer's settings struct of a plug-in kind: one slot per config key,
 * in the kind's order (INT and BOOL as int, REAL as double: what the
 * config parser's MIMO_ARG_* write). */
typedef union {
    double d;
    int i;
} mimo_plugin_slot;

typedef struct {
    mimo_kind kind;               /* first: a node's kind points here */
    const mimo_plugin_kind *pk;   /* the plug-in's (it stays loaded) */
    const char *file;             /* the plug-in's path, for messages */
    mimo_arg args[MIMO_PLUGIN_MAX_ARGS];
    char expect[MIMO_PLUGIN_MAX_ARGS][96]; /* "a number in [0, 10]" */
    mimo_plugin_slot initial[MIMO_PLUGIN_MAX_ARGS]; /* the defaults */
} mimo_plugin_entry;

/* plugin_kind.c: e->kind made from pk: its keys, defaults and the
 * functions that call pk's. pk is checked already (plugin.c). */
void mimo_plugin_entry_init(mimo_plugin_entry *e, const mimo_plugin_kind *pk,
                            const char *file);

/* plugin.c: checks the plug-in p (named `file` in messages; file must
 * outlive the process) and registers its kinds: mimo_plugin_load after
 * dlopen, and the tests with a plug-in linked in (in double precision). */
int mimo_plugin_register(const mimo_plugin_info *p, const char *file);

/* plugin.c: a copy of s kept until the process ends (the tensor names
 * plug-ins declare: checkpoints and summaries read them after infer). */
const char *mimo_plugin_intern(const char *s);

#endif
