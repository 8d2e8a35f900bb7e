/* prep.h — the /preprocessing group `mimo import csv --schema` writes
 * into dataset files (vocabularies, statistics, hash settings, the
 * schema), carried from the training file into every checkpoint of the
 * run and read back from a checkpoint to convert a raw CSV for predict
 * and eval (io/tabular.c). It travels as an HDF5 image of a file holding
 * only that group: taken once from the training file, copied into each
 * checkpoint as it is built (H5Ocopy: the same layout). Internal. */
#ifndef MIMO_IO_PREP_H
#define MIMO_IO_PREP_H

#include <hdf5.h>
#include <stddef.h>
#include <stdint.h>

/* f's /preprocessing as an image (*buf malloc'd, *len bytes; free it), or
 * *buf NULL when f has none. path names f in messages. */
int mimo_prep_take(hid_t f, const char *path, void **buf, size_t *len);

/* The same from the file at path (opened read-only here). */
int mimo_prep_take_file(const char *path, void **buf, size_t *len);

/* An image opened read-only (label names it; HDF5 copies the bytes, buf
 * stays the caller's). Close with H5Fclose. */
hid_t mimo_prep_open(const void *buf, size_t len, const char *label);

/* Copies the image's /preprocessing into f (being built: path names it)
 * and sets the root attribute preprocessing_crc32 to its checksum. Call
 * before the file's state checksum is sealed: that covers the attribute. */
int mimo_prep_copy(hid_t f, const char *path, const void *buf, size_t len);

/* A checkpoint's /preprocessing against its preprocessing_crc32: both or
 * neither must be there, and the checksum must match (an error saying
 * the file is damaged). */
int mimo_prep_verify(hid_t f, const char *path);

/* A raw CSV (csv) as a dataset file's image (*buf malloc'd, *len bytes),
 * converted as `mimo import csv --schema` converts rows, by the schema,
 * vocabularies, statistics and hash settings of pre's /preprocessing
 * (pre: an open file, e.g. mimo_prep_open of a checkpoint's; ckpt names
 * it in messages): every row in the file's order, no split, no shuffle,
 * a value the training data lacked -> the OOV id (1; a target's: -1).
 * Columns of kind skip, split.by and (unless targets) the targets need
 * not be there; a column the schema needs and the CSV lacks is an error
 * naming both. io/tabular.c. */
int mimo_tab_raw(const char *csv, const char *ckpt, hid_t pre, int targets,
                 void **buf, size_t *len);

#endif
