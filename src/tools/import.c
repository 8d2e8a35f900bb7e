/* import.c — converts other files into dataset files (`mimo import`): CSV
 * (selected columns -> float32 (N, k) or int32 label datasets) and IDX
 * (MNIST, Fashion-MNIST; plain or gzip, read with zlib). Every error names
 * the file, and for CSV the line and column. Writing goes through the
 * atomic mimo_dsfile of gen.c. */
#define _POSIX_C_SOURCE 200809L /* fdopen */
#include "tools/datagen.h"

#include "mimo/rng.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "base/fsutil.h"
#include "mimo/error.h"

/* Grows the array whose pointer is at pp (any T **) to hold at least
 * `need` items of `size` bytes, doubling; *cap counts items. */
static int grow(void *pp, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    void *p;
    memcpy(&p, pp, sizeof p);
    size_t c = *cap ? *cap : 16;
    while (c < need) {
        if (c > (size_t)PTRDIFF_MAX / 2)
            return MIMO_ENOMEM;
        c *= 2;
    }
    if (c > (size_t)PTRDIFF_MAX / size)
        return MIMO_ENOMEM;
    void *q = realloc(p, c * size);
    if (!q)
        return MIMO_ENOMEM;
    memcpy(pp, &q, sizeof q);
    *cap = c;
    return 0;
}

/* ==== CSV ============================================================= */

/* Reads the whole file, NUL-terminated (one spare byte past *len). */
static int slurp(const char *path, char **buf, size_t *len)
{
    *buf = NULL;
    int fd, rc0 = mimo_open_regular(path, NULL, &fd);
    if (rc0)
        return rc0;
    FILE *fp = fdopen(fd, "rb");
    if (!fp) {
        close(fd);
        return mimo_error(MIMO_EIO, "%s: cannot open: %s", path, strerror(errno));
    }
    size_t n = 0, cap = 0;
    char *b = NULL;
    int rc = 0;
    for (;;) {
        if (grow(&b, &cap, n + 65536 + 1, 1)) {
            rc = mimo_error(MIMO_ENOMEM, "%s: out of memory reading", path);
            break;
        }
        size_t got = fread(b + n, 1, cap - n - 1, fp);
        n += got;
        if (got == 0)
            break;
    }
    if (!rc && ferror(fp))
        rc = mimo_error(MIMO_EIO, "%s: read error", path);
    fclose(fp);
    if (rc) {
        free(b);
        return rc;
    }
    b[n] = '\0';
    *buf = b;
    *len = n;
    return 0;
}

/* A CSV record reader working in place: fields are unquoted and
 * NUL-terminated inside buf. */
typedef struct {
    const char *path;
    char *buf;
    size_t len, pos;
    long line;      /* line of buf[pos] */
    char delim;
    char **fields;  /* the current record's fields (into buf) */
    size_t nf, cap;
} csv_reader;

static void skip_blank_lines(csv_reader *p)
{
    while (p->pos < p->len) {
        size_t q = p->pos;
        if (p->buf[q] == '\r')
            q++;
        if (q < p->len && p->buf[q] != '\n')
            return;
        if (q >= p->len) { /* a lone trailing '\r' */
            p->pos = p->len;
            return;
        }
        p->pos = q + 1;
        p->line++;
    }
}

/* A quoted field starting at buf[pos] == '"': copies its text (with ""
 * -> ") down to where it starts; returns the end of the text, or 0 on
 * error (*err set). */
static size_t read_quoted(csv_reader *p, long rec_line, int *err)
{
    size_t w = p->pos, r = p->pos + 1;
    for (;;) {
        if (r >= p->len) {
            *err = mimo_error(MIMO_EINVAL, "%s:%ld: unterminated quoted field",
                              p->path, rec_line);
            return 0;
        }
        char c = p->buf[r];
        if (c == '"' && r + 1 < p->len && p->buf[r + 1] == '"') {
            p->buf[w++] = '"';
            r += 2;
            continue;
        }
        if (c == '"')
            break;
        if (c == '\n')
            p->line++;
        p->buf[w++] = c;
        r++;
    }
    r++; /* the closing quote; then only blanks before the delimiter */
    while (r < p->len && p->buf[r] != p->delim &&
           (p->buf[r] == ' ' || p->buf[r] == '\t' || p->buf[r] == '\r'))
        r++;
    if (r < p->len && p->buf[r] != p->delim && p->buf[r] != '\n') {
        *err = mimo_error(MIMO_EINVAL, "%s:%ld: unexpected '%c' after a closing "
                          "quote", p->path, p->line, p->buf[r]);
        return 0;
    }
    p->pos = r;
    return w;
}

/* Reads the next non-blank record into p->fields. Returns 1, 0 at the end
 * of the file, or a negative error. *line gets the record's first line. */
static int csv_next(csv_reader *p, long *line)
{
    skip_blank_lines(p);
    if (p->pos >= p->len)
        return 0;
    *line = p->line;
    p->nf = 0;
    for (;;) {
        if (grow(&p->fields, &p->cap, p->nf + 1, sizeof *p->fields))
            return mimo_error(MIMO_ENOMEM, "%s: out of memory", p->path);
        size_t start = p->pos, end;
        if (p->buf[p->pos] == '"') {
            int err = 0;
            end = read_quoted(p, *line, &err);
            if (err)
                return err;
        } else {
            while (p->pos < p->len && p->buf[p->pos] != p->delim &&
                   p->buf[p->pos] != '\n')
                p->pos++;
            end = p->pos;
            if (end > start && p->buf[end - 1] == '\r')
                end--;
        }
        char c = p->pos < p->len ? p->buf[p->pos] : '\0';
        p->buf[end] = '\0';
        p->fields[p->nf++] = p->buf + start;
        if (p->pos >= p->len)
            return 1;
        p->pos++;
        if (c == '\n') {
            p->line++;
            return 1;
        }
    }
}

/* Strips leading and trailing blanks in place. */
static char *trim(char *s)
{
    while (*s == ' ' || *s == '\t')
        s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        s[--n] = '\0';
    return s;
}

/* One output dataset being filled. */
typedef struct {
    const char *name;
    size_t *cols;      /* k column indices */
    size_t k, kcap;
    int is_label;
    mimo_real *v;      /* (rows, k) */
    int32_t *lab;      /* (rows,) when is_label */
    size_t cap;        /* rows allocated */
} csv_out;

typedef struct {
    const mimo_csv_opts *o;
    csv_reader rd;
    char **header;     /* nh names (into rd.buf), NULL with no_header */
    size_t nh;         /* fields per record */
    csv_out *out;
    size_t rows;
} csv_job;

/* "'name'" or "3" for messages. */
static void col_label(const csv_job *j, size_t c, char *buf, size_t len)
{
    if (j->header)
        snprintf(buf, len, "'%s'", j->header[c]);
    else
        snprintf(buf, len, "%zu", c);
}

/* Whether s is all digits (non-empty); its value in *v. */
static int parse_index(const char *s, size_t *v)
{
    if (!*s)
        return 0;
    size_t x = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || x > (SIZE_MAX - 9) / 10)
            return 0;
        x = x * 10 + (size_t)(*s - '0');
    }
    *v = x;
    return 1;
}

static int add_col(const csv_job *j, csv_out *d, size_t c, const char *spec)
{
    if (c >= j->nh)
        return mimo_error(MIMO_EINVAL, "%s: column %zu in '%s=%s' is out of range "
                          "(the file has %zu columns, 0..%zu)", j->o->path, c,
                          d->name, spec, j->nh, j->nh - 1);
    if (grow(&d->cols, &d->kcap, d->k + 1, sizeof *d->cols))
        return mimo_error(MIMO_ENOMEM, "out of memory");
    d->cols[d->k++] = c;
    return 0;
}

static int unknown_column(const csv_job *j, const csv_out *d, const char *tok,
                          const char *spec)
{
    if (!j->header)
        return mimo_error(MIMO_EINVAL, "%s: unknown column '%s' in '%s=%s' (with "
                          "no header, use 0-based indices or ranges like 0-3)",
                          j->o->path, tok, d->name, spec);
    char list[512] = "";
    for (size_t c = 0; c < j->nh; c++) {
        size_t used = strlen(list);
        snprintf(list + used, sizeof list - used, "%s%s", c ? ", " : "",
                 j->header[c]);
    }
    return mimo_error(MIMO_EINVAL, "%s: unknown column '%s' in '%s=%s' "
                      "(columns: %s)", j->o->path, tok, d->name, spec, list);
}

/* One token of a spec: a header name, an index, or a range A-B. */
static int add_token(const csv_job *j, csv_out *d, const char *tok,
                     const char *spec)
{
    for (size_t c = 0; j->header && c < j->nh; c++)
        if (strcmp(tok, j->header[c]) == 0)
            return add_col(j, d, c, spec);
    size_t a = 0, b = 0;
    if (parse_index(tok, &a))
        return add_col(j, d, a, spec);
    const char *dash = strchr(tok, '-');
    char left[32];
    if (dash && (size_t)(dash - tok) < sizeof left) {
        memcpy(left, tok, (size_t)(dash - tok));
        left[dash - tok] = '\0';
        if (parse_index(left, &a) && parse_index(dash + 1, &b)) {
            if (b < a)
                return mimo_error(MIMO_EINVAL, "%s: backwards range '%s' in "
                                  "'%s=%s'", j->o->path, tok, d->name, spec);
            for (size_t c = a; c <= b; c++) {
                int rc = add_col(j, d, c, spec);
                if (rc)
                    return rc;
            }
            return 0;
        }
    }
    return unknown_column(j, d, tok, spec);
}

/* Resolves "a,b,0-3" into d->cols. */
static int resolve_spec(const csv_job *j, csv_out *d, const char *spec)
{
    char *copy = malloc(strlen(spec) + 1);
    if (!copy)
        return mimo_error(MIMO_ENOMEM, "out of memory");
    strcpy(copy, spec);
    int rc = 0;
    for (char *tok = copy, *next; tok && !rc; tok = next) {
        next = strchr(tok, ',');
        if (next)
            *next++ = '\0';
        char *t = trim(tok);
        rc = *t ? add_token(j, d, t, spec)
                : mimo_error(MIMO_EINVAL, "%s: empty column name in '%s=%s'",
                             j->o->path, d->name, spec);
    }
    free(copy);
    return rc;
}

static int is_label_name(const mimo_csv_opts *o, const char *name)
{
    for (size_t i = 0; i < o->n_labels; i++)
        if (strcmp(o->labels[i], name) == 0)
            return 1;
    return 0;
}

/* Checks names and label flags, resolves every spec. */
static int setup_outputs(csv_job *j)
{
    const mimo_csv_opts *o = j->o;
    for (size_t l = 0; l < o->n_labels; l++) {
        size_t i = 0;
        while (i < o->n_columns && strcmp(o->columns[i].name, o->labels[l]) != 0)
            i++;
        if (i == o->n_columns)
            return mimo_error(MIMO_EINVAL, "labels '%s' is not one of the "
                              "column datasets", o->labels[l]);
    }
    for (size_t i = 0; i < o->n_columns; i++) {
        csv_out *d = &j->out[i];
        d->name = o->columns[i].name;
        if (!d->name || !*d->name)
            return mimo_error(MIMO_EINVAL, "a column dataset has an empty name");
        for (size_t k = 0; k < i; k++)
            if (strcmp(j->out[k].name, d->name) == 0)
                return mimo_error(MIMO_EINVAL, "dataset '%s' is given twice",
                                  d->name);
        d->is_label = is_label_name(o, d->name);
        int rc = resolve_spec(j, d, o->columns[i].spec ? o->columns[i].spec : "");
        if (rc)
            return rc;
        if (d->is_label && d->k != 1)
            return mimo_error(MIMO_EINVAL, "labels '%s' must be one column, got %zu",
                              d->name, d->k);
    }
    return 0;
}

/* Parses field s of column c as a finite number. */
static int parse_value(const csv_job *j, long line, size_t c, char *s, double *v)
{
    char col[300];
    col_label(j, c, col, sizeof col);
    char *t = trim(s), *end = NULL;
    double x = *t ? strtod(t, &end) : 0.0;
    if (!*t)
        return mimo_error(MIMO_EINVAL, "%s:%ld: column %s: empty value",
                          j->o->path, line, col);
    if (*end)
        return mimo_error(MIMO_EINVAL, "%s:%ld: column %s: non-numeric value "
                          "'%.40s'", j->o->path, line, col, t);
    if (!isfinite(x) || !isfinite((mimo_real)x))
        return mimo_error(MIMO_EINVAL, "%s:%ld: column %s: value '%.40s' is not "
                          "finite (or too large)", j->o->path, line, col, t);
    *v = x;
    return 0;
}

/* Appends the current record's values to every output. */
static int take_row(csv_job *j, long line)
{
    if (j->rd.nf != j->nh)
        return mimo_error(MIMO_EINVAL, "%s:%ld: expected %zu fields, found %zu",
                          j->o->path, line, j->nh, j->rd.nf);
    for (size_t i = 0; i < j->o->n_columns; i++) {
        csv_out *d = &j->out[i];
        int g = d->is_label ? grow(&d->lab, &d->cap, j->rows + 1, sizeof *d->lab)
                            : grow(&d->v, &d->cap, j->rows + 1,
                                   d->k * sizeof *d->v);
        if (g)
            return mimo_error(MIMO_ENOMEM, "%s:%ld: out of memory", j->o->path, line);
        for (size_t q = 0; q < d->k; q++) {
            double x = 0;
            int rc = parse_value(j, line, d->cols[q], j->rd.fields[d->cols[q]], &x);
            if (rc)
                return rc;
            if (!d->is_label) {
                d->v[j->rows * d->k + q] = (mimo_real)x;
            } else if (x != floor(x) || x < INT32_MIN || x > INT32_MAX) {
                char col[300];
                col_label(j, d->cols[q], col, sizeof col);
                return mimo_error(MIMO_EINVAL, "%s:%ld: column %s: label '%s' "
                                  "needs integer values, got %.17g", j->o->path,
                                  line, col, d->name, x);
            } else {
                d->lab[j->rows] = (int32_t)x;
            }
        }
    }
    j->rows++;
    return 0;
}

/* Reads the header (or peeks the first record's width), then all rows. */
static int read_csv(csv_job *j)
{
    long line = 0;
    int r = csv_next(&j->rd, &line);
    if (r < 0)
        return r;
    if (r == 0)
        return mimo_error(MIMO_EINVAL, "%s: empty file", j->o->path);
    j->nh = j->rd.nf;
    int rc = 0;
    if (!j->o->no_header) {
        j->header = malloc(j->nh * sizeof *j->header);
        if (!j->header)
            return mimo_error(MIMO_ENOMEM, "out of memory");
        for (size_t c = 0; c < j->nh; c++)
            j->header[c] = trim(j->rd.fields[c]);
    }
    if ((rc = setup_outputs(j)))
        return rc;
    if (j->o->no_header && (rc = take_row(j, line)))
        return rc;
    while ((r = csv_next(&j->rd, &line)) > 0)
        if ((rc = take_row(j, line)))
            return rc;
    if (r < 0)
        return r;
    if (j->rows == 0)
        return mimo_error(MIMO_EINVAL, "%s: no data rows after the header",
                          j->o->path);
    return 0;
}

static int write_csv(const csv_job *j)
{
    mimo_dsfile *f = NULL;
    int rc = mimo_dsfile_create(j->o->out, &f);
    for (size_t i = 0; i < j->o->n_columns && !rc; i++) {
        const csv_out *d = &j->out[i];
        rc = d->is_label ? mimo_dsfile_write_int(f, d->name, d->lab, j->rows)
                         : mimo_dsfile_write_real(f, d->name, d->v, j->rows, d->k);
    }
    if (!rc)
        rc = mimo_dsfile_attr_str(f, "source", j->o->path);
    if (rc) {
        mimo_dsfile_abort(&f);
        return rc;
    }
    return mimo_dsfile_commit(&f);
}

static void free_job(csv_job *j)
{
    for (size_t i = 0; j->out && i < j->o->n_columns; i++) {
        free(j->out[i].cols);
        free(j->out[i].v);
        free(j->out[i].lab);
    }
    free(j->out);
    free(j->header);
    free(j->rd.fields);
    free(j->rd.buf);
}

int mimo_import_csv(const mimo_csv_opts *o)
{
    if (!o->path || !o->out)
        return mimo_error(MIMO_EINVAL, "import csv: input and output files are "
                          "required");
    if (o->n_columns == 0)
        return mimo_error(MIMO_EINVAL, "%s: no column datasets given (e.g. "
                          "x=0-3)", o->path);
    csv_job j;
    memset(&j, 0, sizeof j);
    j.o = o;
    j.rd.path = o->path;
    j.rd.line = 1;
    j.rd.delim = o->delimiter ? o->delimiter : ',';
    int rc = mimo_check_not_input(o->out, &o->path, 1);
    if (!rc)
        rc = slurp(o->path, &j.rd.buf, &j.rd.len);
    if (!rc && !(j.out = calloc(o->n_columns, sizeof *j.out)))
        rc = mimo_error(MIMO_ENOMEM, "out of memory");
    if (!rc && j.rd.len >= 3 && memcmp(j.rd.buf, "\xEF\xBB\xBF", 3) == 0)
        j.rd.pos = 3; /* a UTF-8 byte-order mark */
    if (!rc)
        rc = read_csv(&j);
    if (!rc)
        rc = write_csv(&j);
    free_job(&j);
    return rc;
}

/* ==== IDX ============================================================= */

#define IDX_IMAGES 0x00000803u /* ubyte, 3 dims: N, rows, cols */
#define IDX_LABELS 0x00000801u /* ubyte, 1 dim: N */
#define IDX_CHUNK ((size_t)1 << 20)

/* An open IDX file: its header and the stream positioned at the data. */
typedef struct {
    const char *path;
    gzFile g;
    uint32_t dims[3];
    size_t count; /* product of dims: bytes of data promised */
} idx_file;

/* Reads up to n bytes; *got is how many came. Negative on a read error. */
static int gz_read_full(idx_file *x, unsigned char *buf, size_t n, size_t *got)
{
    *got = 0;
    while (*got < n) {
        size_t want = n - *got < IDX_CHUNK ? n - *got : IDX_CHUNK;
        int r = gzread(x->g, buf + *got, (unsigned)want);
        if (r < 0) {
            int zerr = 0;
            const char *msg = gzerror(x->g, &zerr);
            return mimo_error(MIMO_EIO, "%s: read error: %s", x->path,
                              zerr == Z_ERRNO ? strerror(errno) : msg);
        }
        if (r == 0)
            break;
        *got += (size_t)r;
    }
    return 0;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           (uint32_t)p[3];
}

static int bad_magic(const char *path, uint32_t magic, uint32_t want)
{
    const char *kind = want == IDX_IMAGES ? "images" : "labels";
    const char *hint = magic == IDX_IMAGES ? " (this is an IDX images file)"
                       : magic == IDX_LABELS ? " (this is an IDX labels file)"
                       : "";
    return mimo_error(MIMO_EINVAL, "%s: bad magic 0x%08x, expected 0x%08x for "
                      "IDX %s%s", path, (unsigned)magic, (unsigned)want, kind, hint);
}

/* Opens path and reads its header; magic must be `want`. */
static int idx_open(idx_file *x, const char *path, uint32_t want)
{
    memset(x, 0, sizeof *x);
    x->path = path;
    int fd, rc0 = mimo_open_regular(path, NULL, &fd);
    if (rc0)
        return rc0;
    errno = 0;
    if (!(x->g = gzdopen(fd, "rb")))
        close(fd);
    if (!x->g)
        return mimo_error(MIMO_EIO, "%s: cannot open: %s", path,
                          errno ? strerror(errno) : "out of memory");
    int ndims = want == IDX_IMAGES ? 3 : 1;
    unsigned char h[16];
    size_t hlen = 4 + 4 * (size_t)ndims, got = 0;
    int rc = gz_read_full(x, h, hlen, &got);
    if (rc)
        return rc;
    if (got >= 4 && be32(h) != want)
        return bad_magic(path, be32(h), want);
    if (got < hlen)
        return mimo_error(MIMO_EINVAL, "%s: truncated: %zu bytes, shorter than "
                          "an IDX %s header (%zu bytes)", path, got,
                          ndims == 3 ? "images" : "labels", hlen);
    x->count = 1;
    for (int d = 0; d < ndims; d++) {
        x->dims[d] = be32(h + 4 + 4 * d);
        if (x->dims[d] && x->count > SIZE_MAX / x->dims[d])
            return mimo_error(MIMO_EINVAL, "%s: header dimensions overflow",
                              path);
        x->count *= x->dims[d];
    }
    if (x->dims[0] == 0 || x->count == 0)
        return mimo_error(MIMO_EINVAL, "%s: the header describes no data "
                          "(a zero dimension)", path);
    return 0;
}

/* Reads the count bytes the header promised, growing the buffer as they
 * arrive (a hostile header cannot make us allocate more than the file
 * holds, plus a doubling). */
static int idx_payload(idx_file *x, unsigned char **out)
{
    unsigned char *buf = NULL;
    size_t cap = 0, n = 0;
    int rc = 0;
    while (n < x->count && !rc) {
        size_t want = x->count - n < IDX_CHUNK ? x->count - n : IDX_CHUNK, got = 0;
        if (grow(&buf, &cap, n + want, 1)) {
            rc = mimo_error(MIMO_ENOMEM, "%s: out of memory", x->path);
            break;
        }
        rc = gz_read_full(x, buf + n, want, &got);
        n += got;
        if (!rc && got < want)
            rc = mimo_error(MIMO_EINVAL, "%s: truncated: the header promises %zu "
                            "bytes of data, the file has %zu", x->path, x->count, n);
    }
    if (rc) {
        free(buf);
        return rc;
    }
    *out = buf;
    return 0;
}

static void idx_close(idx_file *x)
{
    if (x->g)
        gzclose(x->g);
    x->g = NULL;
}

/* Reads both payloads and converts: images (N, rows*cols), labels (N,). */
static int idx_convert(idx_file *im, idx_file *lb, int scale, mimo_real **pix,
                       int32_t **lab)
{
    unsigned char *a = NULL, *b = NULL;
    int rc = idx_payload(im, &a);
    if (!rc)
        rc = idx_payload(lb, &b);
    if (!rc && im->count > (size_t)PTRDIFF_MAX / sizeof **pix)
        rc = mimo_error(MIMO_ENOMEM, "%s: too large", im->path);
    if (!rc && (!(*pix = malloc(im->count * sizeof **pix)) ||
                !(*lab = malloc(lb->count * sizeof **lab))))
        rc = mimo_error(MIMO_ENOMEM, "%s: out of memory", im->path);
    for (size_t i = 0; !rc && i < im->count; i++)
        (*pix)[i] = scale ? (mimo_real)(a[i] / 255.0) : (mimo_real)a[i];
    for (size_t i = 0; !rc && i < lb->count; i++)
        (*lab)[i] = (int32_t)b[i];
    free(a);
    free(b);
    return rc;
}

/* K x K average pooling of n images (rows, cols) into (rows/K, cols/K). */
static mimo_real *idx_pool(const mimo_real *pix, size_t n, size_t rows,
                           size_t cols, size_t k)
{
    size_t pr = rows / k, pc = cols / k, per = pr * pc;
    if (per && n > SIZE_MAX / per / sizeof(mimo_real))
        return NULL;
    mimo_real *out = malloc(n * per * sizeof *out);
    if (!out)
        return NULL;
    double inv = 1.0 / (double)(k * k);
    for (size_t i = 0; i < n; i++) {
        const mimo_real *im = pix + i * rows * cols;
        for (size_t a = 0; a < pr; a++)
            for (size_t b = 0; b < pc; b++) {
                double s = 0;
                for (size_t u = 0; u < k; u++)
                    for (size_t w = 0; w < k; w++)
                        s += im[(a * k + u) * cols + b * k + w];
                out[i * per + a * pc + b] = (mimo_real)(s * inv);
            }
    }
    return out;
}

/* The derived labels map[lab[i]]; an error names the first unmapped row. */
static int idx_map(const mimo_idx_opts *o, const mimo_idx_views *v,
                   const int32_t *lab, size_t n, int32_t **out)
{
    if (!(*out = malloc((n ? n : 1) * sizeof **out)))
        return mimo_error(MIMO_ENOMEM, "%s: out of memory", o->labels);
    for (size_t i = 0; i < n; i++) {
        if (lab[i] < 0 || (size_t)lab[i] >= v->n_map)
            return mimo_error(MIMO_EINVAL, "%s: label %d (row %zu) has no entry "
                              "in the label map '%s' (%zu values, for labels "
                              "0..%zu)", o->labels, (int)lab[i], i, v->map_name,
                              v->n_map, v->n_map - 1);
        (*out)[i] = v->map[lab[i]];
    }
    return 0;
}

/* The names of the datasets written; two equal ones are an error. */
static int idx_names(const mimo_idx_opts *o, const mimo_idx_views *v,
                     const char *names[4])
{
    names[0] = o->image_name ? o->image_name : "image";
    names[1] = o->label_name ? o->label_name : "label";
    names[2] = v && v->pool ? (v->pool_name ? v->pool_name : "pooled") : NULL;
    names[3] = v && v->map_name ? v->map_name : NULL;
    static const char *const what[4] = {"image", "label", "pooled image",
                                        "derived label"};
    for (int a = 0; a < 4; a++) {
        if (names[a] && !*names[a])
            return mimo_error(MIMO_EINVAL, "import idx: empty name for the %s "
                              "dataset", what[a]);
        for (int b = 0; b < a; b++)
            if (names[a] && names[b] && strcmp(names[a], names[b]) == 0)
                return mimo_error(MIMO_EINVAL, "import idx: %s and %s datasets "
                                  "both named '%s'", what[b], what[a], names[a]);
    }
    return 0;
}

static int idx_check_views(const mimo_idx_views *v)
{
    if (!v)
        return 0;
    if (v->pool < 0)
        return mimo_error(MIMO_EINVAL, "import idx: pool size must be >= 1, got "
                          "%d", v->pool);
    if (v->map_name && (!v->map || v->n_map == 0))
        return mimo_error(MIMO_EINVAL, "import idx: label map '%s' is empty",
                          v->map_name);
    for (size_t c = 0; v->map_name && c < v->n_map; c++)
        if (v->map[c] < 0)
            return mimo_error(MIMO_EINVAL, "import idx: label map '%s': class "
                              "%zu maps to %d, must be >= 0", v->map_name, c,
                              (int)v->map[c]);
    return 0;
}

/* The rows whose labels are kept (see mimo_idx_views): kept[i] 0 or 1. */
static int idx_kept_rows(const mimo_idx_views *v, size_t n, unsigned char **kept)
{
    uint64_t *perm = malloc(sizeof *perm * (n ? n : 1));
    *kept = calloc(n ? n : 1, 1);
    if (!perm || !*kept) {
        free(perm);
        return mimo_error(MIMO_ENOMEM, "import idx: out of memory");
    }
    mimo_rng r;
    mimo_rng_seed(&r, v->keep_seed);
    mimo_rng_permutation(&r, perm, n);
    size_t k = (size_t)llround(v->keep * (double)n);
    for (size_t i = 0; i < k && i < n; i++)
        (*kept)[perm[i]] = 1;
    free(perm);
    return 0;
}

/* Only the kept rows of the images and labels, in file order: *n shrinks. */
static void idx_compact(const unsigned char *kept, size_t *n, size_t px,
                        mimo_real *pix, int32_t *lab)
{
    size_t m = 0;
    for (size_t i = 0; i < *n; i++)
        if (kept[i]) {
            memmove(pix + m * px, pix + i * px, sizeof *pix * px);
            lab[m++] = lab[i];
        }
    *n = m;
}

static int idx_write(const mimo_idx_opts *o, const mimo_idx_views *v,
                     const idx_file *im, const mimo_real *pix,
                     int32_t *lab, const unsigned char *kept)
{
    const char *names[4];
    size_t n = im->dims[0], rows = im->dims[1], cols = im->dims[2];
    mimo_real *pooled = NULL;
    int32_t *mapped = NULL;
    int rc = idx_names(o, v, names);
    if (!rc && (rows > INT_MAX || cols > INT_MAX))
        rc = mimo_error(MIMO_EINVAL, "%s: %zux%zu images are too large", o->images,
                        rows, cols);
    if (!rc && names[2]) {
        size_t k = (size_t)v->pool;
        if (rows % k || cols % k)
            rc = mimo_error(MIMO_EINVAL, "%s: pool size %zu does not divide the "
                            "%zux%zu images", o->images, k, rows, cols);
        else if (!(pooled = idx_pool(pix, n, rows, cols, k)))
            rc = mimo_error(MIMO_ENOMEM, "%s: out of memory", o->images);
    }
    if (!rc && names[3])
        rc = idx_map(o, v, lab, n, &mapped);
    /* labels dropped after the map is drawn from them all */
    for (size_t i = 0; !rc && kept && i < n; i++)
        if (!kept[i])
            (strcmp(v->keep_name, names[1]) == 0 ? lab : mapped)[i] = -1;
    mimo_dsfile *f = NULL;
    if (!rc)
        rc = mimo_dsfile_create(o->out, &f);
    mimo_shape img = {3, {(int)rows, (int)cols, 1}};
    mimo_shape pl = {3, {(int)(rows / (v && v->pool ? (size_t)v->pool : 1)),
                         (int)(cols / (v && v->pool ? (size_t)v->pool : 1)), 1}};
    if (!rc)
        rc = o->image_full ? mimo_dsfile_write_rows(f, names[0], pix, n, &img)
                           : mimo_dsfile_write_real(f, names[0], pix, n, rows * cols);
    if (!rc)
        rc = mimo_dsfile_write_int(f, names[1], lab, n);
    if (!rc && pooled)
        rc = v->pool_full ? mimo_dsfile_write_rows(f, names[2], pooled, n, &pl)
                          : mimo_dsfile_write_real(f, names[2], pooled, n,
                                                   (size_t)pl.dim[0] * (size_t)pl.dim[1]);
    if (!rc && mapped)
        rc = mimo_dsfile_write_int(f, names[3], mapped, n);
    if (!rc)
        rc = mimo_dsfile_attr_str(f, "source", o->images);
    free(pooled);
    free(mapped);
    if (rc) {
        mimo_dsfile_abort(&f);
        return rc;
    }
    return mimo_dsfile_commit(&f);
}

int mimo_import_idx(const mimo_idx_opts *o)
{
    return mimo_import_idx_views(o, NULL);
}

int mimo_import_idx_views(const mimo_idx_opts *o, const mimo_idx_views *v)
{
    if (!o->images || !o->labels || !o->out)
        return mimo_error(MIMO_EINVAL, "import idx: images, labels and output "
                          "files are required");
    const char *names[4];
    int rc = mimo_check_not_input(o->out, (const char *const[]){o->images, o->labels}, 2);
    if (!rc)
        rc = idx_names(o, v, names);
    if (!rc)
        rc = idx_check_views(v);
    if (rc)
        return rc;
    if (v && v->keep_name && strcmp(v->keep_name, names[1]) &&
        (!names[3] || strcmp(v->keep_name, names[3])))
        return mimo_error(MIMO_EINVAL, "import idx: --keep-labels names '%s', "
                          "which is not a label dataset (%s%s%s)", v->keep_name,
                          names[1], names[3] ? " or " : "", names[3] ? names[3] : "");
    if (v && v->keep_name && !(v->keep > 0 && v->keep <= 1))
        return mimo_error(MIMO_EINVAL, "import idx: --keep-labels %s=%g: the "
                          "fraction must be in (0, 1]", v->keep_name, v->keep);
    idx_file im, lb;
    memset(&im, 0, sizeof im);
    memset(&lb, 0, sizeof lb);
    mimo_real *pix = NULL;
    int32_t *lab = NULL;
    unsigned char *kept = NULL;
    rc = idx_open(&im, o->images, IDX_IMAGES);
    if (!rc)
        rc = idx_open(&lb, o->labels, IDX_LABELS);
    if (!rc && im.dims[0] != lb.dims[0])
        rc = mimo_error(MIMO_EINVAL, "%s has %u images but %s has %u labels",
                        o->images, (unsigned)im.dims[0], o->labels,
                        (unsigned)lb.dims[0]);
    if (!rc)
        rc = idx_convert(&im, &lb, o->scale, &pix, &lab);
    if (!rc && v && v->keep_name)
        rc = idx_kept_rows(v, im.dims[0], &kept);
    if (!rc && kept && v->only_kept) {
        size_t n = im.dims[0];
        idx_compact(kept, &n, (size_t)im.dims[1] * im.dims[2], pix, lab);
        im.dims[0] = (uint32_t)n;
        free(kept);
        kept = NULL;
    }
    if (!rc)
        rc = idx_write(o, v, &im, pix, lab, kept);
    idx_close(&im);
    idx_close(&lb);
    free(pix);
    free(lab);
    free(kept);
    return rc;
}
