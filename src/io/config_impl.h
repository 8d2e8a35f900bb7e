/* config_impl.h — what the files of the config parser share (config.c
 * lists them): the parse state, the document's nodes and messages
 * (config_yaml.c), names and enums (config_names.c), and each part's
 * entry point. Internal to src/io/config*.c; the API is mimo/config.h.
 * Its functions and tables are prefixed mimo_cfg_: they are global within
 * the library (hidden outside libmimo.so, but not in the static build
 * the command line and the tests link). */
#ifndef MIMO_IO_CONFIG_IMPL_H
#define MIMO_IO_CONFIG_IMPL_H

#include <stddef.h>

#include <yaml.h>

#include "mimo/config.h"

#if defined(__GNUC__)
#define CFG_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define CFG_PRINTF(a, b)
#endif

#define MSG_MAX 1024       /* one error message */
#define SET_MAX_DEPTH 64   /* nesting of a --set value */
#define SET_MAX_NODES 4096 /* nodes of one --set value (aliases expanded) */

#define NKEYS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* The parse state: the document, and which nodes came from which --set. */
typedef struct {
    yaml_document_t doc;
    int loaded;                /* doc must be deleted */
    const char *file;
    const char *const *sets;
    int n_sets;
    int n_orig;                /* nodes 1..n_orig come from the text */
    int *set_first;            /* first node index created by each set */
    const char *base;          /* the config file's directory (absolute),
                                * for its relative data paths; or NULL */
    int rewritten;             /* a path was resolved: emit the text */
} cfg;

/* ---- config_yaml.c: the document --------------------------------------- */

/* Loads text as one YAML document into c->doc (nesting checked first). */
int mimo_cfg_load(cfg *c, const char *text, size_t len);
/* The message of a libyaml parse error; who: the --set path, or NULL. */
int mimo_cfg_parse_error(cfg *c, yaml_parser_t *p, const char *text, size_t len,
                         const char *who);
/* out->text: the text as given, or the document re-emitted when --set or
 * a rewrite changed it (this consumes the document). */
int mimo_cfg_keep_text(cfg *c, const char *text, size_t len, mimo_spec *out);

yaml_node_t *mimo_cfg_node_at(cfg *c, int index);
const char *mimo_cfg_sval(const yaml_node_t *n);
int mimo_cfg_is_null(const yaml_node_t *n);
int mimo_cfg_seq_len(const yaml_node_t *seq);
int mimo_cfg_pair_count(const yaml_node_t *map);
/* The --set that created node n, or -1 if n comes from the text. */
int mimo_cfg_set_of(const cfg *c, const yaml_node_t *n);
/* The length of the KEY.PATH of a --set text. */
int mimo_cfg_set_path_len(const char *set);
/* "FILE:LINE:COL" or "FILE: --set KEY.PATH" */
void mimo_cfg_where(const cfg *c, const yaml_node_t *n, char *buf, size_t cap);
/* "line 3, column 5" or "--set KEY.PATH", for "first given at ..." */
void mimo_cfg_where_short(const cfg *c, const yaml_node_t *n, char *buf,
                          size_t cap);
mimo_pos mimo_cfg_pos_of(const cfg *c, const yaml_node_t *n);

/* Records "WHERE: message" for node n and returns MIMO_EINVAL. */
int mimo_cfg_err(const cfg *c, const yaml_node_t *n, const char *fmt, ...)
    CFG_PRINTF(3, 4);
/* The same for a position kept in the spec (line 0: from --set). */
int mimo_cfg_err_at(const cfg *c, mimo_pos p, const char *fmt, ...)
    CFG_PRINTF(3, 4);
int mimo_cfg_nomem(const cfg *c);
/* "WHERE: WHAT: expected EXPECTED, got ..." */
int mimo_cfg_wrong(const cfg *c, const yaml_node_t *n, const char *expected,
                   const char *what);
/* A required key missing in the item named by node `at`. */
int mimo_cfg_missing(cfg *c, yaml_node_t *at, const char *what, const char *key,
                     const char *expected);

/* The value of key in map (NULL if absent), its key node in *knode. */
yaml_node_t *mimo_cfg_get(cfg *c, yaml_node_t *map, const char *key,
                          yaml_node_t **knode);
/* A name used twice: one per name, in file order. */
typedef struct {
    const char *name;
    yaml_node_t *node;
    int order;
} entry;
/* Finds the earliest second use of a name; 1 if found, with both nodes. */
int mimo_cfg_find_dup(entry *e, int n, yaml_node_t **first,
                      yaml_node_t **again);
/* A mapping with only the allowed keys, each once. */
int mimo_cfg_check_keys(cfg *c, yaml_node_t *map, const char *what,
                        const char *const *allowed, int n_allowed);

int mimo_cfg_scalar(cfg *c, yaml_node_t *n, const char *expected,
                    const char *what, const char **s);
int mimo_cfg_get_name(cfg *c, yaml_node_t *n, const char *what, const char **s);
int mimo_cfg_parse_ll(const char *s, long long *v);
int mimo_cfg_get_int(cfg *c, yaml_node_t *n, const char *what, long long lo,
                     long long hi, const char *expected, long long *v);
int mimo_cfg_get_ull(cfg *c, yaml_node_t *n, const char *what,
                     unsigned long long *v);
/* Number ranges: any, (0, inf), [0, inf), [0, 1), (0, 1] (decay factors
 * that may be 1), (0, 1) (factors that must shrink). */
enum { R_ANY, R_POS, R_NONNEG, R_UNIT, R_GAMMA, R_FACTOR };
int mimo_cfg_get_double(cfg *c, yaml_node_t *n, const char *what, int range,
                        double *v);
int mimo_cfg_bool_word(const char *s, int *v);
int mimo_cfg_is_bool_node(const yaml_node_t *n);
int mimo_cfg_get_bool(cfg *c, yaml_node_t *n, const char *what, int *v);
/* A file path into *dst (malloc'd): one the config file gives relative
 * is made absolute from the file's directory, in the document too (the
 * text kept with the run then resolves from anywhere). */
int mimo_cfg_path(cfg *c, yaml_node_t *n, const char *what, char **dst);

/* ---- config_names.c: names --------------------------------------------- */

int mimo_cfg_lower_eq(const char *a, const char *b);
int mimo_cfg_in_list(const char *s, const char *const *list, int n);
/* ", did you mean 'relu'?" for a typo of one of cands, else "". */
void mimo_cfg_suggest(char *buf, size_t cap, const char *s,
                      const char *const *cands, int n);
/* "a, b, c" */
void mimo_cfg_join(char *buf, size_t cap, const char *const *names, int n);
const char *mimo_cfg_article(const char *word);

/* An enum's names as a config spells them. */
typedef struct {
    const char *kind;            /* "activation" */
    int (*parse)(const char *);
    const char *(*name)(int);
    int first, count;
    const char *const *aliases;  /* pairs: Keras' name, ours; NULL-ended */
} enum_desc;

extern const enum_desc mimo_cfg_enum_act, mimo_cfg_enum_init,
    mimo_cfg_enum_loss, mimo_cfg_enum_opt, mimo_cfg_enum_metric,
    mimo_cfg_enum_weighting, mimo_cfg_enum_balancing, mimo_cfg_enum_sched, mimo_cfg_enum_mode,
    mimo_cfg_enum_layer, mimo_cfg_enum_precision;

/* "linear, relu, ..." and, for a typo, the hint. */
void mimo_cfg_enum_list(const enum_desc *d, const char *s, char *list,
                        size_t cap, char *hint, size_t hcap);
int mimo_cfg_get_enum(cfg *c, yaml_node_t *n, const enum_desc *d,
                      const char *what, int *v);
/* The key's own spelling for an alias of k[0, *klen), else k itself. */
const char *mimo_cfg_canonical_key(const char *k, size_t *klen);
/* Every mapping key of the document that is a Keras alias becomes ours. */
int mimo_cfg_canonical_keys(cfg *c);

/* ---- the sections and --set ------------------------------------------- */

/* config_model.c */
/* "'units' in layer 'h1'" */
const char *mimo_cfg_kw(char *buf, size_t cap, const char *key,
                        const char *what);
int mimo_cfg_section(cfg *c, yaml_node_t *n, const char *name,
                     const char *example);
int mimo_cfg_conv_inputs(cfg *c, yaml_node_t *n, mimo_spec *s);
int mimo_cfg_conv_layers(cfg *c, yaml_node_t *n, mimo_spec *s);
int mimo_cfg_conv_outputs(cfg *c, yaml_node_t *n, mimo_spec *s);
/* config_train.c */
int mimo_cfg_conv_train(cfg *c, yaml_node_t *n, mimo_train_spec *t);
int mimo_cfg_conv_data(cfg *c, yaml_node_t *n, mimo_data_spec *d);
/* config_set.c: applies c->sets to the document */
int mimo_cfg_apply_sets(cfg *c);

#endif
