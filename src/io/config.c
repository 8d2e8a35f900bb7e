/* config.c — YAML config text into a mimo_spec, with libyaml's document API.
 * Here: the entry points (mimo_config_parse, mimo_config_load: reading the
 * file) and the walk of the document: load it, take Keras' key spellings,
 * apply the --set overrides, check the top level, convert each section in
 * file order, keep the text actually used.
 * The rest of the parser, by concern (config_impl.h joins them):
 *   config_yaml.c   the document: loading, nodes, file:line:column
 *                   positions and messages, keys of mappings, scalars,
 *                   re-emitting the text
 *   config_names.c  names: enums and their Keras aliases, layer kinds,
 *                   typo hints, Keras spellings of keys
 *   config_model.c  the sections inputs, layers and outputs
 *   config_train.c  the sections train and data
 *   config_set.c    --set KEY.PATH=VALUE on the document
 * Not here: `from` names, cycles and shapes (graph.c); defaults and enum
 * names (spec.c). */
#define _XOPEN_SOURCE 700 /* realpath */
#include "io/config_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mimo/error.h"
#include "mimo/plugin.h"
#include "base/fsutil.h"
#include "base/strutil.h"

/* ---- the root ---------------------------------------------------------- */

static const char *const ROOT_KEYS[] = {"inputs", "layers", "outputs",
                                        "train", "data", "plugins"};

static int check_root_kind(cfg *c)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    if (root->type != YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, root, "a mapping with inputs, layers, outputs",
                              "the top level of the config");
    return 0;
}

/* Known sections, each once, the required ones present (after --set). */
static int check_root(cfg *c)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    int rc;
    if ((rc = mimo_cfg_check_keys(c, root, "the config", ROOT_KEYS,
                                  NKEYS(ROOT_KEYS))))
        return rc;
    for (int i = 0; i < 3; i++)
        if (!mimo_cfg_get(c, root, ROOT_KEYS[i], NULL))
            return mimo_cfg_err(c, root,
                                "missing section '%s' (expected inputs, "
                                "layers, outputs)",
                                ROOT_KEYS[i]);
    return 0;
}

/* No name is both an input and a layer. */
static int check_names(cfg *c, yaml_node_t *inputs, yaml_node_t *layers)
{
    int ni = mimo_cfg_pair_count(inputs), nl = mimo_cfg_pair_count(layers),
        rc = 0;
    yaml_node_t *first, *again;
    entry *e = calloc((size_t)ni + (size_t)nl, sizeof *e);
    if (!e)
        return mimo_cfg_nomem(c);
    for (int i = 0; i < ni + nl; i++) {
        yaml_node_t *m = i < ni ? inputs : layers;
        int j = i < ni ? i : i - ni;
        e[i].node = mimo_cfg_node_at(c, m->data.mapping.pairs.start[j].key);
        e[i].name = mimo_cfg_sval(e[i].node);
        e[i].order = i;
    }
    if (mimo_cfg_find_dup(e, ni + nl, &first, &again)) {
        char at[MSG_MAX];
        mimo_cfg_where_short(c, first, at, sizeof at);
        rc = mimo_cfg_err(c, again,
                          "name '%s' is used by both an input and a layer "
                          "(the input is at %s); names must be unique",
                          mimo_cfg_sval(again), at);
    }
    free(e);
    return rc;
}

/* plugins: [PATH, ...] (or one PATH): each loaded (mimo_plugin_load),
 * before any section is converted, so that layers anywhere in the file
 * may name their kinds. Paths resolve as data paths do (mimo_cfg_path):
 * the text kept with the run holds absolute ones, and eval, predict and
 * --resume from a checkpoint load the same files. Every rank parses the
 * config, so every rank loads them. */
static int load_plugins(cfg *c)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    yaml_node_t *v = mimo_cfg_get(c, root, "plugins", NULL);
    int n = 1, rc = 0;
    if (!v || mimo_cfg_is_null(v))
        return 0;
    if (v->type == YAML_MAPPING_NODE)
        return mimo_cfg_wrong(c, v, "a list of plug-in files", "plugins");
    if (v->type == YAML_SEQUENCE_NODE)
        n = mimo_cfg_seq_len(v);
    for (int i = 0; !rc && i < n; i++) {
        yaml_node_t *it = v->type == YAML_SEQUENCE_NODE
            ? mimo_cfg_node_at(c, v->data.sequence.items.start[i]) : v;
        char *path = NULL;
        if ((rc = mimo_cfg_path(c, it, "plugins", &path)))
            break;
        if ((rc = mimo_plugin_load(path))) {
            char msg[MSG_MAX];
            snprintf(msg, sizeof msg, "%s", mimo_errmsg());
            rc = mimo_cfg_err(c, it, "%s", msg);
        }
        free(path);
    }
    return rc;
}

/* train.task_balancing balances several heads' gradients, with the heads'
 * fixed weights (the learned ones of loss_weighting: uncertainty have
 * gradients of their own that no projection defines). */
static int check_balancing(cfg *c, yaml_node_t *root, const mimo_spec *s)
{
    yaml_node_t *t = mimo_cfg_get(c, root, "train", NULL);
    yaml_node_t *v = t && t->type == YAML_MAPPING_NODE
                         ? mimo_cfg_get(c, t, "task_balancing", NULL) : NULL;
    const char *name = mimo_cfg_enum_balancing.name((int)s->train.task_balancing);
    if (!v || s->train.task_balancing == MIMO_BALANCING_NONE)
        return 0;
    if (s->n_outputs < 2)
        return mimo_cfg_err(c, v, "train.task_balancing: %s balances the gradients "
                            "of several heads, but the network has %d (use none)",
                            name, s->n_outputs);
    if (s->train.task_balancing == MIMO_BALANCING_MGDA_UB && s->train.accumulate > 1)
        return mimo_cfg_err(c, v, "train.task_balancing: mgda_ub needs the whole "
                            "batch's gradients before its backward; with accumulate "
                            "%ld it would run each micro-batch's forward twice (not "
                            "supported: use accumulate: 1 or pcgrad)",
                            s->train.accumulate);
    if (s->train.loss_weighting != MIMO_WEIGHTING_FIXED)
        return mimo_cfg_err(c, v, "train.task_balancing: %s goes with the heads' "
                            "fixed weights, not loss_weighting: %s (choose one)",
                            name, mimo_weighting_name(s->train.loss_weighting));
    return 0;
}

/* Converts the sections in file order, then checks names across them. */
static int convert(cfg *c, mimo_spec *s)
{
    yaml_node_t *root = yaml_document_get_root_node(&c->doc);
    yaml_node_pair_t *p;
    int rc = 0;
    for (p = root->data.mapping.pairs.start;
         !rc && p < root->data.mapping.pairs.top; p++) {
        const char *k = mimo_cfg_sval(mimo_cfg_node_at(c, p->key));
        yaml_node_t *v = mimo_cfg_node_at(c, p->value);
        if (strcmp(k, "inputs") == 0)
            rc = mimo_cfg_conv_inputs(c, v, s);
        else if (strcmp(k, "layers") == 0)
            rc = mimo_cfg_conv_layers(c, v, s);
        else if (strcmp(k, "outputs") == 0)
            rc = mimo_cfg_conv_outputs(c, v, s);
        else if (strcmp(k, "train") == 0)
            rc = mimo_cfg_conv_train(c, v, &s->train);
        else if (strcmp(k, "data") == 0)
            rc = mimo_cfg_conv_data(c, v, &s->data);
        /* plugins: loaded before (load_plugins) */
    }
    if (rc || (rc = check_balancing(c, root, s)))
        return rc;
    return check_names(c, mimo_cfg_get(c, root, "inputs", NULL),
                       mimo_cfg_get(c, root, "layers", NULL));
}

/* ---- public ------------------------------------------------------------ */

static int parse(const char *text, size_t len, const char *file,
                 const char *base, const char *const *sets, int n_sets,
                 mimo_spec *out)
{
    cfg c;
    int rc;
    if (!out)
        return mimo_error(MIMO_EINVAL, "mimo_config_parse: out is NULL");
    mimo_spec_defaults(out);
    memset(&c, 0, sizeof c);
    c.file = file ? file : "<config>";
    c.base = base;
    c.sets = sets;
    c.n_sets = sets ? n_sets : 0;
    if (!text && len)
        return mimo_error(MIMO_EINVAL, "%s: no config text", c.file);
    if (!(out->file = mimo_strdup(c.file)))
        return mimo_cfg_nomem(&c);
    rc = mimo_cfg_load(&c, text ? text : "", text ? len : 0);
    if (!rc)
        rc = check_root_kind(&c);
    if (!rc)
        rc = mimo_cfg_canonical_keys(&c);
    if (!rc)
        rc = mimo_cfg_apply_sets(&c);
    if (!rc)
        rc = check_root(&c);
    if (!rc)
        rc = load_plugins(&c);
    if (!rc)
        rc = convert(&c, out);
    if (!rc)
        rc = mimo_cfg_keep_text(&c, text, len, out);
    if (c.loaded)
        yaml_document_delete(&c.doc);
    free(c.set_first);
    if (rc)
        mimo_spec_free(out);
    return rc;
}

int mimo_config_parse(const char *text, size_t len, const char *file,
                      const char *const *sets, int n_sets, mimo_spec *out)
{
    return parse(text, len, file, NULL, sets, n_sets, out);
}

/* The absolute directory of the file at path (NULL when out of memory or
 * it cannot be resolved: the paths then stay as written). */
static char *dir_of(const char *path)
{
    char *copy = mimo_strdup(path), *dir = NULL;
    if (copy) {
        char *slash = strrchr(copy, '/');
        if (slash)
            *(slash == copy ? slash + 1 : slash) = '\0';
        dir = realpath(slash ? copy : ".", NULL);
    }
    free(copy);
    return dir;
}

/* A config larger than this is refused, not read (a 100,000-layer chain
 * is about 6 MB). */
#define MIMO_CONFIG_MAX_BYTES (64u << 20)

/* Reads a whole config file, a regular file of at most
 * MIMO_CONFIG_MAX_BYTES; *buf owned by the caller. */
static int read_file(const char *path, char **buf, size_t *len)
{
    size_t cap = 0, n = 0, k;
    char *b = NULL, *p;
    int bad, fd, rc = mimo_open_regular(path, "config file", &fd);
    if (rc)
        return rc;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
    }
    for (;;) {
        if (n > MIMO_CONFIG_MAX_BYTES) {
            free(b);
            fclose(f);
            return mimo_error(MIMO_EINVAL, "%s: config file larger than %u MB: "
                              "not a config", path, MIMO_CONFIG_MAX_BYTES >> 20);
        }
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            if (cap < n || !(p = realloc(b, cap))) {
                free(b);
                fclose(f);
                return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
            }
            b = p;
        }
        n += k = fread(b + n, 1, cap - n, f);
        if (k == 0)
            break;
    }
    bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return mimo_error(MIMO_EIO, "%s: cannot read config file", path);
    }
    *buf = b;
    *len = n;
    return 0;
}

int mimo_config_load(const char *path, const char *const *sets, int n_sets,
                     mimo_spec *out)
{
    char *text = NULL;
    size_t len = 0;
    int rc;
    if (out)
        mimo_spec_defaults(out);
    if (!path)
        return mimo_error(MIMO_EINVAL, "mimo_config_load: path is NULL");
    if ((rc = read_file(path, &text, &len)))
        return rc;
    char *base = dir_of(path);
    rc = parse(text, len, path, base, sets, n_sets, out);
    free(base);
    free(text);
    return rc;
}

