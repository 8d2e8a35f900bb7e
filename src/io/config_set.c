/* config_set.c — `--set KEY.PATH=VALUE` on the loaded document: the value
 * parsed as YAML and copied in (bounded in size and depth), the path
 * walked from the root, missing mappings made and a scalar that stands
 * for a mapping (optimizer: adam) turned into one. The nodes a --set
 * makes are remembered so that messages name the --set, not a line. */
#include "io/config_impl.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mimo/error.h"

/* ---- --set overrides --------------------------------------------------- */

typedef struct {
    yaml_document_t *src;
    int budget;                /* nodes left to copy */
} copier;

/* Deep copy of node si of the value document into c->doc; 0 on failure. */
static int copy_node(cfg *c, copier *cp, int si, int depth)
{
    yaml_node_t *n = yaml_document_get_node(cp->src, si);
    yaml_document_t *d = &c->doc;
    int di, len;
    if (depth > SET_MAX_DEPTH)
        cp->budget = -1;
    if (!n || --cp->budget < 0)
        return 0;
    if (n->type == YAML_SCALAR_NODE) {
        len = n->data.scalar.length > INT_MAX ? -1 : (int)n->data.scalar.length;
        return len < 0 ? 0 : yaml_document_add_scalar(d, n->tag,
                   n->data.scalar.value, len, n->data.scalar.style);
    }
    if (n->type == YAML_SEQUENCE_NODE) {
        di = yaml_document_add_sequence(d, n->tag, n->data.sequence.style);
        len = mimo_cfg_seq_len(n);
        for (int i = 0; di && i < len; i++) {
            int item = copy_node(c, cp, n->data.sequence.items.start[i],
                                 depth + 1);
            if (!item || !yaml_document_append_sequence_item(d, di, item))
                return 0;
        }
        return di;
    }
    di = yaml_document_add_mapping(d, n->tag, n->data.mapping.style);
    len = mimo_cfg_pair_count(n);
    for (int i = 0; di && i < len; i++) {
        yaml_node_pair_t pr = n->data.mapping.pairs.start[i];
        int k = copy_node(c, cp, pr.key, depth + 1);
        int v = k ? copy_node(c, cp, pr.value, depth + 1) : 0;
        if (!v || !yaml_document_append_mapping_pair(d, di, k, v))
            return 0;
    }
    return di;
}

/* Parses the value text of set i as YAML into a new node of c->doc. */
static int set_value(cfg *c, int i, const char *text, int *out)
{
    const char *set = c->sets[i];
    char who[MSG_MAX / 2];
    yaml_parser_t p;
    copier cp;
    yaml_document_t vd;
    int rc = 0;
    snprintf(who, sizeof who, "%.*s", mimo_cfg_set_path_len(set), set);
    if (!yaml_parser_initialize(&p))
        return mimo_cfg_nomem(c);
    yaml_parser_set_input_string(&p, (const unsigned char *)text,
                                 strlen(text));
    if (!yaml_parser_load(&p, &vd)) {
        rc = mimo_cfg_parse_error(c, &p, text, strlen(text), who);
        yaml_parser_delete(&p);
        return rc;
    }
    yaml_parser_delete(&p);
    cp.src = &vd;
    cp.budget = SET_MAX_NODES;
    if (!yaml_document_get_root_node(&vd))
        *out = yaml_document_add_scalar(&c->doc, NULL,
                                        (yaml_char_t *)"", 0,
                                        YAML_PLAIN_SCALAR_STYLE);
    else
        *out = copy_node(c, &cp, 1, 0);
    if (!*out)
        rc = cp.budget < 0 ? mimo_error(MIMO_EINVAL,
                                        "%s: --set %s: value "
                                        "is too large or too deeply nested",
                                        c->file, who)
                           : mimo_cfg_nomem(c);
    yaml_document_delete(&vd);
    return rc;
}

/* Index of the pair of `map` whose key is [k, k+klen), or -1. */
static int find_pair(cfg *c, int map, const char *k, size_t klen)
{
    k = mimo_cfg_canonical_key(k, &klen);
    yaml_node_t *m = mimo_cfg_node_at(c, map);
    for (int i = 0; i < mimo_cfg_pair_count(m); i++) {
        yaml_node_t *key =
            mimo_cfg_node_at(c, m->data.mapping.pairs.start[i].key);
        if (key->type == YAML_SCALAR_NODE && key->data.scalar.length == klen
            && memcmp(key->data.scalar.value, k, klen) == 0)
            return i;
    }
    return -1;
}

/* Adds the pair (new key [k, k+klen), value) to map; 0 on failure. */
static int add_pair(cfg *c, int map, const char *k, size_t klen, int value)
{
    k = mimo_cfg_canonical_key(k, &klen);
    int key = yaml_document_add_scalar(&c->doc, NULL, (yaml_char_t *)k,
                                       (int)klen, YAML_PLAIN_SCALAR_STYLE);
    return key && yaml_document_append_mapping_pair(&c->doc, map, key, value);
}

/* Keys whose value may be true/false instead of a mapping. */
static int is_callback_key(const char *k, size_t klen)
{
    static const char *const keys[] = {"reduce_lr_on_plateau",
                                       "early_stopping"};
    for (int i = 0; i < 2; i++)
        if (strlen(keys[i]) == klen && memcmp(keys[i], k, klen) == 0)
            return 1;
    return 0;
}

/* The mapping at pair j of map, made one if it is a scalar: NAME becomes
 * {type: NAME} (optimizer: adam); nothing, or a callback's true/false
 * (early_stopping: false), becomes {}, so setting a key below a callback
 * enables it. */
static int child_mapping(cfg *c, int set, int map, int j, const char *k,
                         size_t klen, int *out)
{
    int v = mimo_cfg_node_at(c, map)->data.mapping.pairs.start[j].value, m;
    yaml_node_t *vn = mimo_cfg_node_at(c, v);
    if (vn->type == YAML_MAPPING_NODE) {
        *out = v;
        return 0;
    }
    if (vn->type == YAML_SEQUENCE_NODE)
        return mimo_error(MIMO_EINVAL,
                          "%s: --set %.*s: '%.*s' is a list, "
                          "not a mapping (expected a path of mapping keys)",
                          c->file, mimo_cfg_set_path_len(c->sets[set]),
                          c->sets[set], (int)klen, k);
    static const char *const sections[] = {"inputs", "layers", "outputs", "train",
                                           "data", "checkpoint"};
    for (size_t i = 0;
         !mimo_cfg_is_null(vn) && i < sizeof sections / sizeof *sections; i++)
        if (strlen(sections[i]) == klen && memcmp(sections[i], k, klen) == 0)
            return mimo_cfg_err(
                c, vn,
                "--set %.*s: '%.*s' is '%s', not a mapping (expected "
                "a mapping of keys)",
                mimo_cfg_set_path_len(c->sets[set]), c->sets[set], (int)klen, k,
                vn->type == YAML_SCALAR_NODE ? mimo_cfg_sval(vn) : "?");
    if (!(m = yaml_document_add_mapping(&c->doc, NULL,
                                        YAML_BLOCK_MAPPING_STYLE)))
        return mimo_cfg_nomem(c);
    vn = mimo_cfg_node_at(c, v); /* adding nodes may move them */
    if (!mimo_cfg_is_null(vn)
        && !(mimo_cfg_is_bool_node(vn) && is_callback_key(k, klen))
        && !add_pair(c, m, "type", 4, v))
        return mimo_cfg_nomem(c);
    mimo_cfg_node_at(c, map)->data.mapping.pairs.start[j].value = m;
    *out = m;
    return 0;
}

/* Walks path (dotted, klen bytes) from the root and sets the last key. */
static int walk_set(cfg *c, int set, const char *path, size_t plen, int value)
{
    const char *k = path, *end = path + plen;
    int cur = 1, rc;                      /* the root is node 1 */
    for (;;) {
        const char *dot = memchr(k, '.', (size_t)(end - k));
        size_t klen = (size_t)((dot ? dot : end) - k);
        int j = find_pair(c, cur, k, klen), m = 0;
        if (!dot) {
            if (j >= 0)
                mimo_cfg_node_at(c, cur)->data.mapping.pairs.start[j].value =
                    value;
            else if (!add_pair(c, cur, k, klen, value))
                return mimo_cfg_nomem(c);
            return 0;
        }
        if (j >= 0) {
            if ((rc = child_mapping(c, set, cur, j, k, klen, &m)))
                return rc;
        } else if (!(m = yaml_document_add_mapping(&c->doc, NULL,
                                                   YAML_BLOCK_MAPPING_STYLE))
                   || !add_pair(c, cur, k, klen, m)) {
            return mimo_cfg_nomem(c);
        }
        cur = m;
        k = dot + 1;
    }
}

/* Splits "key.path=value"; the path trimmed of spaces, no empty parts. */
static int split_set(const char *s, const char **path, size_t *plen,
                     const char **value)
{
    const char *eq = s ? strchr(s, '=') : NULL, *b = s, *e = eq;
    if (!eq)
        return -1;
    while (b < e && (*b == ' ' || *b == '\t'))
        b++;
    while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
        e--;
    if (b == e || *b == '.' || e[-1] == '.')
        return -1;
    for (const char *q = b; q + 1 < e; q++)
        if (q[0] == '.' && q[1] == '.')
            return -1;
    *path = b;
    *plen = (size_t)(e - b);
    *value = eq + 1;
    return 0;
}

int mimo_cfg_apply_sets(cfg *c)
{
    if (c->n_sets <= 0)
        return 0;
    c->set_first = malloc((size_t)c->n_sets * sizeof *c->set_first);
    if (!c->set_first)
        return mimo_cfg_nomem(c);
    for (int i = 0; i < c->n_sets; i++)
        c->set_first[i] = INT_MAX;
    for (int i = 0; i < c->n_sets; i++) {
        const char *path, *value;
        size_t plen;
        int v, rc;
        c->set_first[i] = (int)(c->doc.nodes.top - c->doc.nodes.start) + 1;
        if (split_set(c->sets[i], &path, &plen, &value))
            return mimo_error(MIMO_EINVAL, "%s: --set '%s': expected "
                              "KEY.PATH=VALUE", c->file,
                              c->sets[i] ? c->sets[i] : "(null)");
        if ((rc = set_value(c, i, value, &v))
            || (rc = walk_set(c, i, path, plen, v)))
            return rc;
    }
    return 0;
}

