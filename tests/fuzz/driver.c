/* driver: runs a fuzz target (LLVMFuzzerTestOneInput) without libFuzzer, for `make check`:
 * every corpus input as it is, then inputs mutated deterministically from a seed (bit
 * flips, byte sets, inserts, deletions, truncation, duplicated chunks, splices of two
 * inputs) for a few seconds; one TAP test saying how many executions ran.
 *
 *   fuzz_NAME [-t SECONDS] [-s SEED] [-i ITERATION] [PATH...]
 *
 * PATHs are corpus files or directories (default: tests/fuzz/corpus/NAME); -t 0 only runs
 * them as they are (to replay a crashing input); -i replays the one mutated input a crash
 * report names. TB_FUZZ_SECONDS and TB_FUZZ_SEED set the defaults (2 s, seed 1). */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX_BYTES (256 * 1024)
#define INPUT_SECONDS 20 /* one input running longer is a hang */

struct input {
    uint8_t *data;
    size_t size;
};

static struct input *corpus;
static size_t ncorpus;
static char name[64];
static uint64_t seed = 1, rng;
static volatile uint64_t current = UINT64_MAX; /* the mutated input being run */

static uint64_t next_rand(void)
{
    /* xorshift64* */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ULL;
}

static size_t below(size_t n)
{
    return n ? (size_t)(next_rand() % n) : 0;
}

static void add_input(const uint8_t *data, size_t size)
{
    struct input *v = realloc(corpus, (ncorpus + 1) * sizeof *v);
    if (!v || !(v[ncorpus].data = malloc(size ? size : 1))) {
        perror("fuzz");
        exit(2);
    }
    corpus = v;
    memcpy(corpus[ncorpus].data, data, size);
    corpus[ncorpus++].size = size;
}

static void load(const char *path)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "fuzz: %s: %s\n", path, strerror(errno));
        exit(2);
    }
    if (S_ISDIR(st.st_mode)) {
        struct dirent **list;
        int n = scandir(path, &list, NULL, alphasort); /* sorted: the same order everywhere */
        for (int i = 0; i < n; i++) {
            char p[4096];
            if (list[i]->d_name[0] != '.') {
                snprintf(p, sizeof p, "%s/%s", path, list[i]->d_name);
                load(p);
            }
            free(list[i]);
        }
        free(list);
        return;
    }
    FILE *f = fopen(path, "rb");
    uint8_t *buf = malloc(INPUT_MAX_BYTES);
    size_t n = f && buf ? fread(buf, 1, INPUT_MAX_BYTES, f) : 0;
    if (!f || !buf || ferror(f)) {
        fprintf(stderr, "fuzz: cannot read %s\n", path);
        exit(2);
    }
    fclose(f);
    add_input(buf, n);
    free(buf);
}

/* One mutation of buf (size *n, room INPUT_MAX_BYTES) in place. */
static void mutate_once(uint8_t *buf, size_t *n)
{
    static const uint8_t interesting[] = { 0, 1, 0x7f, 0x80, 0xff, '\t', '\n', '0', '9', '#', '"', '/', '.', '-' };
    size_t len = *n, at = below(len), k;
    switch (below(9)) {
    case 0: /* flip a bit */
        if (len)
            buf[at] ^= (uint8_t)(1u << below(8));
        break;
    case 1: /* set a byte to an interesting value */
        if (len)
            buf[at] = interesting[below(sizeof interesting)];
        break;
    case 2: /* set a byte to anything */
        if (len)
            buf[at] = (uint8_t)next_rand();
        break;
    case 3: /* insert a few bytes */
        k = 1 + below(8);
        if (len + k <= INPUT_MAX_BYTES) {
            at = below(len + 1);
            memmove(buf + at + k, buf + at, len - at);
            for (size_t i = 0; i < k; i++)
                buf[at + i] = below(2) ? interesting[below(sizeof interesting)] : (uint8_t)next_rand();
            *n = len + k;
        }
        break;
    case 4: /* delete a chunk */
        if (len) {
            k = 1 + below(len - at < 64 ? len - at : 64);
            memmove(buf + at, buf + at + k, len - at - k);
            *n = len - k;
        }
        break;
    case 5: /* truncate */
        *n = below(len + 1);
        break;
    case 6: /* duplicate a chunk in place */
        if (len) {
            k = 1 + below(len - at < 512 ? len - at : 512);
            if (len + k <= INPUT_MAX_BYTES) {
                size_t to = below(len + 1);
                uint8_t *chunk = malloc(k);
                if (!chunk)
                    break;
                memcpy(chunk, buf + at, k);
                memmove(buf + to + k, buf + to, len - to);
                memcpy(buf + to, chunk, k);
                free(chunk);
                *n = len + k;
            }
        }
        break;
    case 7: { /* splice: our head, another input's tail */
        const struct input *o = &corpus[below(ncorpus)];
        size_t from = below(o->size + 1);
        if (at + (o->size - from) <= INPUT_MAX_BYTES) {
            memcpy(buf + at, o->data + from, o->size - from);
            *n = at + (o->size - from);
        }
        break;
    }
    default: /* copy a chunk over another place (fields that move together) */
        if (len) {
            size_t to = below(len);
            k = 1 + below(len - (at > to ? at : to) < 32 ? len - (at > to ? at : to) : 32);
            memmove(buf + to, buf + at, k);
        }
    }
}

/* The mutated input of iteration it (into buf): a corpus input with 1..8 mutations. The
 * random generator is seeded by (seed, it) so any iteration can be made again alone. */
static void make_input(uint64_t it, uint8_t *buf, size_t *n)
{
    const struct input *in;
    rng = (seed * 0x9E3779B97F4A7C15ULL) ^ (it + 1) * 0xD1B54A32D192ED03ULL;
    rng = rng ? rng : 1;
    for (int i = 0; i < 4; i++)
        next_rand();
    in = &corpus[below(ncorpus)];
    memcpy(buf, in->data, in->size);
    *n = in->size;
    for (size_t m = 1 + below(8); m > 0; m--)
        mutate_once(buf, n);
}

static void put_str(const char *s)
{
    ssize_t r = write(1, s, strlen(s));
    (void)r;
}

static void put_u64(uint64_t v)
{
    char d[24], *p = d + sizeof d;
    *--p = '\0';
    do
        *--p = (char)('0' + v % 10);
    while (v /= 10);
    put_str(p);
}

/* Says (async-signal-safe) which input failed and how to run it again. */
static void report_failure(const char *what)
{
    put_str("not ok 1 - ");
    put_str(name);
    put_str(": ");
    put_str(what);
    if (current == UINT64_MAX) {
        put_str(" on a corpus input as it is\n");
    } else {
        put_str(" on mutated input ");
        put_u64(current);
        put_str(": replay with fuzz_");
        put_str(name);
        put_str(" -s ");
        put_u64(seed);
        put_str(" -i ");
        put_u64(current);
        put_str("\n");
    }
}

static void on_alarm(int sig)
{
    (void)sig;
    report_failure("an input ran longer than the time allowed (a hang)");
    _exit(1);
}

static void on_crash(int sig)
{
    report_failure(sig == SIGABRT ? "abort (a broken invariant or a sanitizer)" : "crash");
    signal(sig, SIG_DFL);
    raise(sig);
}

static void on_sanitizer_death(void)
{
    report_failure("sanitizer report");
}

/* Set by ASan/UBSan builds (make asan): its reports end the process without our handlers. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static void run(const uint8_t *data, size_t size)
{
    /* A copy of exactly size bytes: reading past it is the sanitizers' to see. */
    uint8_t *copy = malloc(size ? size : 1);
    if (!copy)
        exit(2);
    memcpy(copy, data, size);
    alarm(INPUT_SECONDS);
    LLVMFuzzerTestOneInput(copy, size);
    alarm(0);
    free(copy);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    const char *base = strrchr(argv[0], '/'), *env;
    double seconds = 2, start;
    uint64_t execs = 0, only = UINT64_MAX;
    uint8_t *buf = malloc(INPUT_MAX_BYTES);
    int opt, paths = 0;
    base = base ? base + 1 : argv[0];
    snprintf(name, sizeof name, "%s", strncmp(base, "fuzz_", 5) == 0 ? base + 5 : base);
    if ((env = getenv("TB_FUZZ_SECONDS")) && *env)
        seconds = atof(env);
    if ((env = getenv("TB_FUZZ_SEED")) && *env)
        seed = strtoull(env, NULL, 10);
    while ((opt = getopt(argc, argv, "t:s:i:")) != -1) {
        if (opt == 't')
            seconds = atof(optarg);
        else if (opt == 's')
            seed = strtoull(optarg, NULL, 10);
        else if (opt == 'i')
            only = strtoull(optarg, NULL, 10);
        else {
            fprintf(stderr, "usage: %s [-t SECONDS] [-s SEED] [-i ITERATION] [PATH...]\n", argv[0]);
            return 2;
        }
    }
    for (; optind < argc; optind++, paths++)
        load(argv[optind]);
    if (!paths) {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/%s", FUZZ_CORPUS, name);
        load(dir);
    }
    if (!buf || !ncorpus) {
        printf("1..0 # SKIP %s: no corpus\n", name);
        return 0;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    signal(SIGALRM, on_alarm);
    if (__sanitizer_set_death_callback) {
        __sanitizer_set_death_callback(on_sanitizer_death);
        signal(SIGABRT, on_crash); /* our own fuzz_assert */
    } else {
        signal(SIGABRT, on_crash);
        signal(SIGSEGV, on_crash);
        signal(SIGBUS, on_crash);
        signal(SIGFPE, on_crash);
        signal(SIGILL, on_crash);
    }
    printf("1..1\n");
    if (only != UINT64_MAX) {
        size_t n;
        make_input(only, buf, &n);
        current = only;
        run(buf, n);
        printf("ok 1 - %s: mutated input %llu (seed %llu) ran\n", name, (unsigned long long)only,
               (unsigned long long)seed);
        return 0;
    }
    start = now();
    for (size_t i = 0; i < ncorpus; i++, execs++)
        run(corpus[i].data, corpus[i].size);
    for (uint64_t it = 0; now() - start < seconds; it++, execs++) {
        size_t n;
        make_input(it, buf, &n);
        current = it;
        run(buf, n);
    }
    printf("ok 1 - %s: %llu executions in %.1f s (%zu corpus inputs, seed %llu)\n", name, (unsigned long long)execs,
           now() - start, ncorpus, (unsigned long long)seed);
    for (size_t i = 0; i < ncorpus; i++)
        free(corpus[i].data);
    free(corpus);
    free(buf);
    return 0;
}
