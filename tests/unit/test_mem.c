/* test_mem: tb_free_list and TB_FREE_ALL, the destructors' one-line run of free() calls. */
#include "tap.h"
#include "mem.h"

#include <stdlib.h>
#include <string.h>

/* Stands in for tb_free_list where TB_FREE_ALL is expanded below: what the macro passes. */
static void *seen[8];
static size_t nseen;

static void record(void *const *p, size_t n)
{
    nseen = n;
    memcpy(seen, p, n * sizeof *p);
}

struct holder {
    char *name, *path;
};

int main(void)
{
    char *a = strdup("a"), *b = strdup("b");
    struct holder *h = malloc(sizeof *h);

#define tb_free_list record
    TB_FREE_ALL(a, NULL, b);
#undef tb_free_list
    is_int(nseen, 3, "TB_FREE_ALL passes every argument, NULL too");
    ok(seen[0] == a && seen[1] == NULL && seen[2] == b, "in the order written");
#define tb_free_list record
    TB_FREE_ALL(a);
#undef tb_free_list
    ok(nseen == 1 && seen[0] == a, "one argument");

    /* The leak checks (make asan, valgrind) fail this test where one of these stays. */
    TB_FREE_ALL(a, NULL, b);
    ok(1, "frees its arguments, skipping NULL");
    tb_free_list(NULL, 0);
    ok(1, "an empty list is nothing to do");
    h->name = strdup("name");
    h->path = NULL;
    /* Read before any is freed: the holder may even come first (ASan: no use after free). */
    TB_FREE_ALL(h, h->name, h->path);
    ok(1, "the struct that holds the others, in any place");
    return done_testing();
}
