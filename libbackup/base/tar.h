/* tar: the backup stream, a POSIX (pax) tar written and read through libarchive on
 * top of a tb_stream; every member's size and SHA-256 are taken as it passes. */
#ifndef TB_TAR_H
#define TB_TAR_H

#include <stdint.h>
#include <sys/types.h>

#include "stream.h"

typedef struct tb_tar_writer tb_tar_writer;
typedef struct tb_tar_reader tb_tar_reader;

/* The writer takes ownership of out; close finishes the tar and closes out. */
int tb_tar_writer_new(tb_tar_writer **out, tb_stream *dst);
/* The same for a live pipe: each member reaches dst whole as soon as it is added. */
int tb_tar_writer_live(tb_tar_writer **out, tb_stream *dst);
/* Adds the regular file at path as member name; returns its size and SHA-256 (hex). */
int tb_tar_add_file(tb_tar_writer *w, const char *name, const char *path, uint64_t *size, char sha256[65],
                    unsigned *mode);
int tb_tar_add_dir(tb_tar_writer *w, const char *name, mode_t mode);
int tb_tar_add_bytes(tb_tar_writer *w, const char *name, const void *data, size_t len, mode_t mode);
int tb_tar_writer_close(tb_tar_writer *w);
void tb_tar_writer_free(tb_tar_writer *w);

struct tb_tar_entry {
    const char *name; /* valid until the next call to tb_tar_next */
    uint64_t size;
    mode_t mode; /* permission bits, with setuid, setgid and sticky */
    int is_dir;
    uid_t uid;
    gid_t gid;
    int64_t mtime;
};

/* The reader's limits: a member name's length, and the zero padding allowed after the
 * end-of-archive blocks (tar pads to its record size: GNU tar to 10 KiB). */
#define TB_ARCHIVE_NAME_MAX 1024
#define TB_ARCHIVE_PAD_MAX (1 << 20)

/* The reader takes ownership of src. */
int tb_tar_reader_new(tb_tar_reader **out, tb_stream *src);
/* Moves to the next member: 1 with *e filled, 0 at the end of the archive. Refused
 * (TB_EVERIFY): members other than regular files and directories (links, devices, sparse
 * files), names that are absolute, hold "." or ".." or an empty component or a control
 * byte, or are too long; at the end, missing end-of-archive blocks and anything but zero
 * padding after them (an appended archive). */
int tb_tar_next(tb_tar_reader *r, struct tb_tar_entry *e);
/* Reads the current member's data; *n == 0 at its end. Exactly the stated size comes out:
 * holes, data beyond the size and a short member are refused (TB_EVERIFY). */
int tb_tar_read(tb_tar_reader *r, void *buf, size_t len, size_t *n);
/* A stream over the current member's data (read-only; freeing it leaves r alone). */
int tb_tar_entry_stream(tb_tar_reader *r, tb_stream **out);
void tb_tar_reader_free(tb_tar_reader *r);

#endif
