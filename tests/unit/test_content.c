/* test_content: what restore and replay check of a database's files without reading a
 * table (tb_content_check_files), and whether the linked RocksDB could flush into it
 * (tb_content_writable): a table missing or of the wrong size, a footer of a newer
 * format_version, a comparator only the writer has. */
#include "tap.h"
#include "dbfix.h"
#include "content.h"
#include "error.h"
#include "fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <rocksdb/c.h>

static char root[256];


/* The name of the first table file of dir (static buffer). */
static const char *first_sst(const char *dir)
{
    static char name[256];
    DIR *d = opendir(dir);
    struct dirent *e;
    name[0] = 0;
    while (d && (e = readdir(d)))
        if (strstr(e->d_name, ".sst") && (!name[0] || strcmp(e->d_name, name) < 0))
            snprintf(name, sizeof name, "%s", e->d_name);
    if (d)
        closedir(d);
    return name;
}

static void test_check_files(void)
{
    char *db = tb_fs_join(root, "db"), *sst, *aside, name[256];
    uint64_t seq = 0;
    struct stat st;
    ok(dbfix_make_db(db, 0) == 0, "a database of three tables");
    is_int(tb_content_check_files(db, TB_POLICY_COMMITTED, &seq), 0, "its files are all there");
    is_int((int)seq, 600, "and it ends at sequence 600");

    snprintf(name, sizeof name, "%s", first_sst(db));
    sst = tb_fs_join(db, name);
    aside = tb_fs_join(root, "aside");
    ok(rename(sst, aside) == 0, "a table moved away");
    is_int(tb_content_check_files(db, TB_POLICY_COMMITTED, &seq), TB_EVERIFY, "a missing table: TB_EVERIFY");
    ok(strstr(tb_error_last(), "is not there") && strstr(tb_error_last(), name), "naming it: %s", tb_error_last());
    ok(rename(aside, sst) == 0 && stat(sst, &st) == 0 && truncate(sst, st.st_size - 1) == 0, "back, one byte short");
    is_int(tb_content_check_files(db, TB_POLICY_COMMITTED, &seq), TB_EVERIFY, "a table of another size: TB_EVERIFY");
    ok(strstr(tb_error_last(), "the MANIFEST says") != NULL, "saying so: %s", tb_error_last());
    free(sst), free(aside), free(db);
}

static void test_writable(void)
{
    char *db = tb_fs_join(root, "w"), *rev = tb_fs_join(root, "rev"), *why = NULL, *sst;
    unsigned char v6[4] = { 6, 0, 0, 0 }, old[4];
    struct stat st;
    int fd;
    ok(dbfix_make_db(db, 0) == 0 && dbfix_make_db(rev, 1) == 0, "a bytewise and a reverse-ordered database");
    is_int(tb_content_writable(db, &why), 0, "the linked RocksDB can flush into the bytewise one");
    ok(why == NULL, "with no reason");

    sst = tb_fs_join(db, first_sst(db));
    fd = open(sst, O_RDWR);
    ok(fd >= 0 && fstat(fd, &st) == 0 && pread(fd, old, 4, st.st_size - 12) == 4 && old[0] <= 5 &&
       pwrite(fd, v6, 4, st.st_size - 12) == 4, "a table's footer says format_version 6 (was %d)", old[0]);
    is_int(tb_content_writable(db, &why), 1, "then it cannot");
    ok(why && strstr(why, "format_version 6, which the linked RocksDB cannot read"), "why: %s", why ? why : "(none)");
    free(why), why = NULL;
    ok(fd >= 0 && pwrite(fd, old, 4, st.st_size - 12) == 4, "the footer put back");
    if (fd >= 0)
        close(fd);

    is_int(tb_content_writable(rev, &why), 1, "nor into one ordered by a comparator it does not have");
    ok(why && strstr(why, "comparator themis.test.Reverse"), "why: %s", why ? why : "(none)");
    free(why), free(sst), free(db), free(rev);
}

int main(void)
{
    snprintf(root, sizeof root, "/tmp/test_content.%d", (int)getpid());
    tb_fs_mkdir_p(root, 0700);
    test_check_files();
    test_writable();
    tb_fs_rm_rf(root);
    return done_testing();
}
