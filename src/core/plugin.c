/* plugin.c — loading plug-ins (mimo/plugin.h): dlopen the file, find its
 * `mimo_plugin`, check the ABI and every kind it lists before any is
 * registered (a plug-in is taken whole or not at all), then register its
 * kinds after the built-in ones, where mimo_kind_at and mimo_kind_find
 * (kind.c) see them. plugin_kind.c makes each one a mimo_kind.
 *
 * Plug-ins are never unloaded: specs and graphs point at their kinds.
 * The registry only grows, in fixed arrays, so a kind's address never
 * changes. Loading is meant for the main thread, before the configs that
 * name the kinds are parsed. */
#include <ctype.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/plugin_impl.h"
#include "base/fsutil.h"
#include "base/strutil.h"
#include "mimo/error.h"

#define MAX_KINDS 64  /* plug-in kinds of a process */
#define MAX_FILES 32  /* plug-ins of a process */

static mimo_plugin_entry entries[MAX_KINDS];
static int n_entries;
static struct {
    void *handle;
    char *path;
} files[MAX_FILES];
static int n_files;

const mimo_kind *mimo_plugin_kind_at(int i)
{
    return i >= 0 && i < n_entries ? &entries[i].kind : NULL;
}

/* ---- interned names ------------------------------------------------------ */

typedef struct interned {
    struct interned *next;
    char s[];
} interned;
static interned *names;

const char *mimo_plugin_intern(const char *s)
{
    for (interned *p = names; p; p = p->next)
        if (strcmp(p->s, s) == 0)
            return p->s;
    size_t len = strlen(s) + 1;
    interned *p = malloc(sizeof *p + len);
    if (!p)
        return NULL;
    memcpy(p->s, s, len);
    p->next = names;
    names = p;
    return p->s;
}

/* ---- checks -------------------------------------------------------------- */

/* A name a config can write: lower case, digits, '_', a letter first. */
static int good_name(const char *s)
{
    if (!s || !islower((unsigned char)s[0]) || strlen(s) >= MIMO_PLUGIN_NAME_MAX)
        return 0;
    for (; *s; s++)
        if (!islower((unsigned char)*s) && !isdigit((unsigned char)*s) && *s != '_')
            return 0;
    return 1;
}

/* Who already answers to name: "a built-in kind", "the plug-in F", or the
 * kind before it in the same plug-in; NULL: nobody. */
static const char *taken(const char *name, const mimo_plugin_kind *ks, int upto)
{
    const mimo_kind *k = mimo_kind_find(name);
    if (k) {
        for (int i = 0; i < n_entries; i++)
            if (k == &entries[i].kind)
                return entries[i].file;
        return "mimo (a built-in kind)";
    }
    for (int i = 0; i < upto; i++) {
        if (mimo_same_name(ks[i].name, name))
            return "this plug-in (an earlier kind)";
        for (int a = 0; ks[i].aliases && ks[i].aliases[a]; a++)
            if (mimo_same_name(ks[i].aliases[a], name))
                return "this plug-in (an earlier kind)";
    }
    return NULL;
}

static const char *const COMMON_KEYS[] = {"type", "from", "shares", "trainable"};

/* What is wrong with config key a, or NULL. */
static const char *bad_arg(const mimo_plugin_kind *k, int i)
{
    const mimo_plugin_arg *a = &k->args[i];
    if (!good_name(a->key))
        return "a key that is not a lower-case name";
    for (size_t c = 0; c < sizeof COMMON_KEYS / sizeof *COMMON_KEYS; c++)
        if (strcmp(a->key, COMMON_KEYS[c]) == 0)
            return "a key every layer has (type, from, shares, trainable)";
    for (int j = 0; j < i; j++)
        if (strcmp(k->args[j].key, a->key) == 0)
            return "a key declared twice";
    if (a->type != MIMO_PLUGIN_INT && a->type != MIMO_PLUGIN_REAL &&
        a->type != MIMO_PLUGIN_BOOL)
        return "a key of no known type (MIMO_PLUGIN_INT, _REAL, _BOOL)";
    if (a->type != MIMO_PLUGIN_BOOL && (isnan(a->lo) || isnan(a->hi) || a->lo > a->hi))
        return "a key whose bounds are not lo <= hi";
    if (!a->required && a->type != MIMO_PLUGIN_BOOL &&
        !(a->def >= a->lo && a->def <= a->hi))
        return "a key whose default is outside its bounds";
    if (!a->required && a->type == MIMO_PLUGIN_BOOL && a->def != 0 && a->def != 1)
        return "a boolean key whose default is not 0 or 1";
    if (!a->required && a->type == MIMO_PLUGIN_INT && a->def != floor(a->def))
        return "an integer key whose default is not whole";
    return NULL;
}

/* Kind i of the plug-in at path: 0 or an error naming what is wrong. */
static int check_kind(const char *path, const mimo_plugin_kind *ks, int i)
{
    const mimo_plugin_kind *k = &ks[i];
    const char *who;
    if (!good_name(k->name))
        return mimo_error(MIMO_EINVAL, "%s: plug-in kind %d has no name a config "
                          "can write (lower case, digits, '_', a letter first, "
                          "under %d characters)", path, i + 1, MIMO_PLUGIN_NAME_MAX);
    if ((who = taken(k->name, ks, i)))
        return mimo_error(MIMO_EINVAL, "%s: the plug-in's kind '%s' already "
                          "exists: defined by %s; rename the kind", path,
                          k->name, who);
    for (int a = 0; k->aliases && k->aliases[a]; a++)
        if (!good_name(k->aliases[a]) || (who = taken(k->aliases[a], ks, i)) ||
            mimo_same_name(k->aliases[a], k->name))
            return mimo_error(MIMO_EINVAL, "%s: alias '%s' of the plug-in's kind "
                              "'%s' %s%s", path, k->aliases[a] ? k->aliases[a] : "",
                              k->name, who ? "already exists: defined by "
                              : "is not a new lower-case name", who ? who : "");
    if (!k->infer || !k->forward || !k->backward)
        return mimo_error(MIMO_EINVAL, "%s: the plug-in's kind '%s' lacks infer, "
                          "forward or backward", path, k->name);
    if (k->min_inputs < 1 || k->max_inputs < k->min_inputs ||
        k->max_inputs > MIMO_PLUGIN_MAX_INPUTS)
        return mimo_error(MIMO_EINVAL, "%s: the plug-in's kind '%s' takes %d to %d "
                          "inputs (expected 1 <= min_inputs <= max_inputs <= %d)",
                          path, k->name, k->min_inputs, k->max_inputs,
                          MIMO_PLUGIN_MAX_INPUTS);
    if (k->n_args < 0 || k->n_args > MIMO_PLUGIN_MAX_ARGS || (k->n_args && !k->args))
        return mimo_error(MIMO_EINVAL, "%s: the plug-in's kind '%s' has %d config "
                          "keys (0 to %d)", path, k->name, k->n_args,
                          MIMO_PLUGIN_MAX_ARGS);
    for (int a = 0; a < k->n_args; a++) {
        const char *what = bad_arg(k, a);
        if (what)
            return mimo_error(MIMO_EINVAL, "%s: config key %d ('%s') of the "
                              "plug-in's kind '%s' is %s", path, a + 1,
                              k->args[a].key ? k->args[a].key : "", k->name, what);
    }
    return 0;
}

/* The description the plug-in exports: ABI first (nothing else is read
 * from a plug-in of another ABI), then sizes, then every kind. */
static int check_info(const char *path, const mimo_plugin_info *p)
{
    if (p->abi != MIMO_PLUGIN_ABI)
        return mimo_error(MIMO_EINVAL, "%s: the plug-in was built for plug-in ABI "
                          "%d, this mimo has ABI %d: rebuild it against this "
                          "mimo's <mimo/plugin.h>", path, p->abi, MIMO_PLUGIN_ABI);
    if (p->size < (int)sizeof *p || p->kind_size < (int)sizeof(mimo_plugin_kind))
        return mimo_error(MIMO_EINVAL, "%s: the plug-in's mimo_plugin is not "
                          "filled with MIMO_PLUGIN_INFO_INIT (size %d, kind size "
                          "%d; expected %d, %d)", path, p->size, p->kind_size,
                          (int)sizeof *p, (int)sizeof(mimo_plugin_kind));
    if (p->real_size != (int)sizeof(mimo_real))
        return mimo_error(MIMO_EINVAL, "%s: the plug-in computes on %d-byte reals, "
                          "this mimo on %d-byte ones", path, p->real_size,
                          (int)sizeof(mimo_real));
    if (p->n_kinds < 1 || !p->kinds)
        return mimo_error(MIMO_EINVAL, "%s: the plug-in lists no layer kinds", path);
    if (n_entries + p->n_kinds > MAX_KINDS)
        return mimo_error(MIMO_EINVAL, "%s: too many plug-in kinds (at most %d in "
                          "a process)", path, MAX_KINDS);
    for (int i = 0; i < p->n_kinds; i++) {
        int rc = check_kind(path, p->kinds, i);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- loading -------------------------------------------------------------- */

int mimo_plugin_register(const mimo_plugin_info *p, const char *file)
{
    int rc = check_info(file, p);
    if (rc)
        return rc;
    for (int i = 0; i < p->n_kinds; i++) {
        mimo_plugin_entry_init(&entries[n_entries], &p->kinds[i], file);
        n_entries++; /* only now do lookups see it */
    }
    return 0;
}

/* dlopen's name for path: one without '/' would be searched for in the
 * library path; the user meant the file here. */
static char *open_name(const char *path)
{
    return strchr(path, '/') ? mimo_strdup(path) : mimo_strcat2("./", path);
}

int mimo_plugin_load(const char *path)
{
    if (!path || !path[0])
        return mimo_error(MIMO_EINVAL, "mimo_plugin_load: no path");
    int rc = mimo_check_regular(path, "plug-in");
    if (rc)
        return rc;
    char *name = open_name(path);
    if (!name)
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    free(name);
    if (!h)
        return mimo_error(MIMO_EIO, "%s: cannot load the plug-in: %s", path,
                          dlerror());
    for (int i = 0; i < n_files; i++)
        if (files[i].handle == h) { /* loaded before: nothing to do */
            dlclose(h);
            return 0;
        }
    const mimo_plugin_info *p = dlsym(h, MIMO_PLUGIN_SYMBOL);
    char *keep = p && n_files < MAX_FILES ? mimo_strdup(path) : NULL;
    if (!p)
        rc = mimo_error(MIMO_EINVAL, "%s: not a mimo plug-in: it defines no '%s' "
                        "symbol (see mimo/plugin.h)", path, MIMO_PLUGIN_SYMBOL);
    else if (n_files == MAX_FILES)
        rc = mimo_error(MIMO_EINVAL, "%s: too many plug-ins (at most %d files in a "
                        "process)", path, MAX_FILES);
    else if (!keep)
        rc = mimo_error(MIMO_ENOMEM, "%s: out of memory", path);
    else
        rc = mimo_plugin_register(p, keep);
    if (rc) {
        free(keep);
        dlclose(h);
        return rc;
    }
    files[n_files].handle = h;
    files[n_files++].path = keep;
    return 0;
}
