/* remote: s3:// locations where the tools take a backup, a stream or a WAL archive, and the
 * push of a WAL archive's closed segments offsite. */
#ifndef TB_REMOTE_H
#define TB_REMOTE_H

#include "s3.h"
#include "stream.h"

/* Downloads every object under url (s3://bucket/prefix, taken as a directory) into a new
 * private directory made under scratch; *dir (malloc'd) is it, and the caller removes it.
 * No objects at all is TB_ENOENT naming the url. */
int tb_remote_fetch_dir(tb_s3 *s, const char *url, const char *scratch, char **dir);
/* Downloads every object under url (taken as a directory) into dir, which it creates;
 * *copied (may be NULL) says how many objects it wrote. */
int tb_remote_fetch_into(tb_s3 *s, const char *url, const char *dir, unsigned *copied);

/* A reader of one object: a thread downloads it into a pipe the stream reads, so a
 * restore starts before the download ends and nothing is staged on disk. Closing the
 * reader reports the download's error, if any. */
int tb_remote_reader(tb_stream **out, tb_s3 *s, const char *url);

/* Offsite copy of a WAL archive directory under url (s3://bucket/prefix). The remote
 * index never names a segment that is not there: segments go first, then index.tsv and
 * cf.tsv. push_segment sends one closed segment; catch_up lists the prefix and sends every
 * local segment that is missing or of another size there (after a restart or a failed
 * push). *pushed (may be NULL) counts the segments sent. */
int tb_remote_push_segment(tb_s3 *s, const char *dir, const char *url, const char *name);
int tb_remote_push_catch_up(tb_s3 *s, const char *dir, const char *url, unsigned *pushed);

#endif
