/* remote: the S3 side of a repository (repo.h): a backup, a backup root, a stream, a whole
 * prefix fetched as a directory. The WAL archive's push and retention are wal/walremote.h. */
#ifndef TB_REMOTE_H
#define TB_REMOTE_H

#include "crypt.h"
#include "s3.h"
#include "stream.h"

/* A new private directory under scratch (*dir, malloc'd), for what is downloaded. */
int tb_remote_mkdtemp(const char *scratch, char **dir);

/* Downloads every object under url (s3://bucket/prefix, taken as a directory) into a new
 * private directory made under scratch; *dir (malloc'd) is it, and the caller removes it.
 * No objects at all is TB_ENOENT naming the url. */
int tb_remote_fetch_dir(tb_s3 *s, const char *url, const char *scratch, char **dir);
/* Downloads every object under url (taken as a directory) into dir, which it creates;
 * *copied (may be NULL) says how many objects it wrote. */
int tb_remote_fetch_into(tb_s3 *s, const char *url, const char *dir, unsigned *copied);
/* A backup at url (s3://bucket/prefix/NAME) and, for an incremental one, its parents, each
 * into a sibling directory of its name under a new private directory made under scratch:
 * *tmp (malloc'd) is that directory, which the caller removes (also on failure, when set),
 * and *dir (malloc'd) the backup's copy in it. A missing parent is TB_EVERIFY naming it. */
int tb_remote_fetch_backup(tb_s3 *s, const char *url, const char *scratch, char **tmp, char **dir);

/* A backup root in S3 as tb_catalog_list and tb_restore_pick read it: a local mirror of
 * every PREFIX/NAME/MANIFEST.json (and VERIFY.json), made in a new private directory under
 * scratch. A backup's other files come only when it is tried: fetch, tb_restore_pick's
 * prepare hook, brings those of the backup mirrored at dir and of its parents. remove
 * deletes every object under PREFIX/NAME/ (listed first, then deleted one by one); *deleted
 * (may be NULL) counts them. free removes the mirror; free(NULL) does nothing. */
typedef struct tb_remote_root tb_remote_root;
int tb_remote_root_open(tb_remote_root **out, tb_s3 *s, const char *url, const char *scratch);
const char *tb_remote_root_dir(const tb_remote_root *r);
int tb_remote_root_fetch(tb_remote_root *r, const char *dir);
int tb_remote_root_remove(tb_remote_root *r, const char *name, unsigned *deleted);
void tb_remote_root_free(tb_remote_root *r);

/* A reader of one object: a thread downloads it into a pipe the stream reads, so a
 * restore starts before the download ends and nothing is staged on disk. Closing the
 * reader reports the download's error, if any. */
int tb_remote_reader(tb_stream **out, tb_s3 *s, const char *url);

#endif
