/* config_impl.h — what the files of the config parser share (config.c
 * lists them): the parse state, the document's nodes and messages
 * (config_yaml.c), names and enums (config_names.c), and each part's
 * entry point. Internal to src/io/config*.c; the API is mimo/config.h. */
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
int load(cfg *c, const char *text, size_t len);
/* The message of a libyaml parse error; who: the --set path, or NULL. */
int parse_error(cfg *c, yaml_parser_t *p, const char *text, size_t len,
                const char *who);
/* out->text: the text as given, or the document re-emitted when --set or
 * a rewrite changed it (this consumes the document). */
int keep_text(cfg *c, const char *text, size_t len, mimo_spec *out);

yaml_node_t *node_at(cfg *c, int index);
const char *sval(const yaml_node_t *n);
int is_null(const yaml_node_t *n);
int seq_len(const yaml_node_t *seq);
int pair_count(const yaml_node_t *map);
/* The --set that created node n, or -1 if n comes from the text. */
int set_of(const cfg *c, const yaml_node_t *n);
/* The length of the KEY.PATH of a --set text. */
int set_path_len(const char *set);
/* "FILE:LINE:COL" or "FILE: --set KEY.PATH" */
void where(const cfg *c, const yaml_node_t *n, char *buf, size_t cap);
/* "line 3, column 5" or "--set KEY.PATH", for "first given at ..." */
void where_short(const cfg *c, const yaml_node_t *n, char *buf, size_t cap);
mimo_pos pos_of(const cfg *c, const yaml_node_t *n);

/* Records "WHERE: message" for node n and returns MIMO_EINVAL. */
int err(const cfg *c, const yaml_node_t *n, const char *fmt, ...)
    CFG_PRINTF(3, 4);
/* The same for a position kept in the spec (line 0: from --set). */
int err_at(const cfg *c, mimo_pos p, const char *fmt, ...) CFG_PRINTF(3, 4);
int nomem(const cfg *c);
/* "WHERE: WHAT: expected EXPECTED, got ..." */
int wrong(const cfg *c, const yaml_node_t *n, const char *expected,
          const char *what);
/* A required key missing in the item named by node `at`. */
int missing(cfg *c, yaml_node_t *at, const char *what, const char *key,
            const char *expected);

/* The value of key in map (NULL if absent), its key node in *knode. */
yaml_node_t *get(cfg *c, yaml_node_t *map, const char *key,
                 yaml_node_t **knode);
/* A name used twice: one per name, in file order. */
typedef struct {
    const char *name;
    yaml_node_t *node;
    int order;
} entry;
/* Finds the earliest second use of a name; 1 if found, with both nodes. */
int find_dup(entry *e, int n, yaml_node_t **first, yaml_node_t **again);
/* A mapping with only the allowed keys, each once. */
int check_keys(cfg *c, yaml_node_t *map, const char *what,
               const char *const *allowed, int n_allowed);

int scalar(cfg *c, yaml_node_t *n, const char *expected, const char *what,
           const char **s);
int get_name(cfg *c, yaml_node_t *n, const char *what, const char **s);
int parse_ll(const char *s, long long *v);
int get_int(cfg *c, yaml_node_t *n, const char *what, long long lo,
            long long hi, const char *expected, long long *v);
int get_ull(cfg *c, yaml_node_t *n, const char *what, unsigned long long *v);
/* Number ranges: any, (0, inf), [0, inf), [0, 1), (0, 1] (decay factors
 * that may be 1), (0, 1) (factors that must shrink). */
enum { R_ANY, R_POS, R_NONNEG, R_UNIT, R_GAMMA, R_FACTOR };
int get_double(cfg *c, yaml_node_t *n, const char *what, int range,
               double *v);
int bool_word(const char *s, int *v);
int is_bool_node(const yaml_node_t *n);
int get_bool(cfg *c, yaml_node_t *n, const char *what, int *v);

/* ---- config_names.c: names --------------------------------------------- */

int lower_eq(const char *a, const char *b);
int in_list(const char *s, const char *const *list, int n);
/* ", did you mean 'relu'?" for a typo of one of cands, else "". */
void suggest(char *buf, size_t cap, const char *s,
             const char *const *cands, int n);
/* "a, b, c" */
void join(char *buf, size_t cap, const char *const *names, int n);
const char *article(const char *word);

/* An enum's names as a config spells them. */
typedef struct {
    const char *kind;            /* "activation" */
    int (*parse)(const char *);
    const char *(*name)(int);
    int first, count;
    const char *const *aliases;  /* pairs: Keras' name, ours; NULL-ended */
} enum_desc;

extern const enum_desc E_ACT, E_INIT, E_LOSS, E_OPT, E_METRIC, E_WEIGHTING,
    E_SCHED, E_MODE, E_LAYER;

/* "linear, relu, ..." and, for a typo, the hint. */
void enum_list(const enum_desc *d, const char *s, char *list, size_t cap,
               char *hint, size_t hcap);
int get_enum(cfg *c, yaml_node_t *n, const enum_desc *d, const char *what,
             int *v);
/* The key's own spelling for an alias of k[0, *klen), else k itself. */
const char *canonical_key(const char *k, size_t *klen);
/* Every mapping key of the document that is a Keras alias becomes ours. */
int canonical_keys(cfg *c);

/* ---- the sections and --set ------------------------------------------- */

/* config_model.c */
/* "'units' in layer 'h1'" */
const char *kw(char *buf, size_t cap, const char *key, const char *what);
int section(cfg *c, yaml_node_t *n, const char *name, const char *example);
int conv_inputs(cfg *c, yaml_node_t *n, mimo_spec *s);
int conv_layers(cfg *c, yaml_node_t *n, mimo_spec *s);
int conv_outputs(cfg *c, yaml_node_t *n, mimo_spec *s);
/* config_train.c */
int conv_train(cfg *c, yaml_node_t *n, mimo_train_spec *t);
int conv_data(cfg *c, yaml_node_t *n, mimo_data_spec *d);
/* config_set.c: applies c->sets to the document */
int apply_sets(cfg *c);

#endif
