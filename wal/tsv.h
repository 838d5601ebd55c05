/* tsv: strict reading of the WAL archive's tab-separated tables (index.tsv, cf.tsv,
 * state.tsv): whole lines, exact fields, numbers that are digits only and fit. */
#ifndef TB_TSV_H
#define TB_TSV_H

#include <stddef.h>
#include <stdint.h>

/* A table's text being read line by line (the text is changed in place). */
struct tb_tsv {
    char *p, *end;
    const char *path; /* for messages */
    int lineno;
};

void tb_tsv_init(struct tb_tsv *t, char *text, size_t len, const char *path);
/* 1 with *line (its newline cut) and t->lineno set, 0 at the end; TB_EVERIFY for an empty
 * line, a NUL byte or a last line without its newline (a file cut short). */
int tb_tsv_next(struct tb_tsv *t, char **line);
/* Cuts line at its tabs into f[0..]: how many fields it has (max + 1 when more than max). */
int tb_tsv_split(char *line, char **f, int max);
/* 1 when s is a decimal number that fits, *v its value; 0 else (empty, a sign, a space,
 * anything after the digits, or too large). tb_tsv_i64 takes one leading '-'. */
int tb_tsv_u64(const char *s, uint64_t *v);
int tb_tsv_i64(const char *s, int64_t *v);
/* TB_EVERIFY with "PATH line N: " and the message. */
int tb_tsv_error(const struct tb_tsv *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
