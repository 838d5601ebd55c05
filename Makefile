# themis-backup: one Makefile builds the library, the tools, the fixtures and the tests.
PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
CXX     ?= c++
PKGS     = libarchive libzstd libcrypto libcurl yaml-0.1 jansson expat libxxhash liblz4 snappy zlib
# Another librocksdb (the one a site's ThemisDB ships): make ROCKSDB_PREFIX=DIR uses
# DIR/include and DIR/lib; otherwise pkg-config's (PKG_CONFIG_PATH may point elsewhere).
ROCKSDB_PREFIX ?=
ifeq ($(ROCKSDB_PREFIX),)
PKGS    += rocksdb
ROCKS_CFLAGS :=
ROCKS_LIBS   :=
else
ROCKS_CFLAGS := -I$(ROCKSDB_PREFIX)/include
ROCKS_LIBS   := -L$(ROCKSDB_PREFIX)/lib -Wl,-rpath,$(ROCKSDB_PREFIX)/lib -lrocksdb
endif
PKG_CFLAGS := $(ROCKS_CFLAGS) $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(ROCKS_LIBS) $(shell pkg-config --libs $(PKGS))
OPT     ?= -O2
SAN     ?=
# The library by layer (docs/architecture.md): base below the RocksDB readers, the WAL
# layer over them, the commands (libbackup/) on top; one include path each.
LIB_DIRS := libbackup/base libbackup/rocks wal libbackup
INCLUDES := $(addprefix -I,$(LIB_DIRS))
CFLAGS  += -std=c11 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -pthread \
           $(INCLUDES) $(PKG_CFLAGS) $(SAN) -DVECTORS='"$(abspath tests/unit/vectors)"'
CXXFLAGS += -std=c++17 -D_GNU_SOURCE -g $(OPT) -Wall -Wextra -Werror -pthread \
           $(INCLUDES) $(PKG_CFLAGS) $(SAN)
LDFLAGS += -pthread $(SAN)
# libbackup may hold one small C++ file (what RocksDB's C API cannot do at all); the C++
# fixtures link the same library, so every program links the C++ runtime.
LDLIBS  += $(PKG_LIBS) -lstdc++ -lm

LIB_SRC  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
LIB_CXX  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.cc))
LIB_HDR  := $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.h))
LIB_OBJ  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC)) $(patsubst %.cc,$(BUILD)/obj/%.o,$(LIB_CXX))
LIB      := $(BUILD)/libthemisbackup.a
TOOLS    := $(patsubst tools/%.c,$(BUILD)/bin/%,$(wildcard tools/*.c))
FIXTURES := $(patsubst fixtures/%.c,$(BUILD)/bin/%,$(wildcard fixtures/*.c)) \
            $(patsubst fixtures/%.cc,$(BUILD)/bin/%,$(wildcard fixtures/*.cc))
UNITS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))
# Fuzz targets (tests/fuzz/NAME.c, docs/fuzzing.md): with tests/fuzz/driver.c they are
# fuzz_NAME, a few seconds of seeded mutation in make check; make fuzz links them to libFuzzer.
FUZZ_TARGETS := $(filter-out driver,$(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/*.c)))
FUZZ_UNITS   := $(patsubst %,$(BUILD)/tests/fuzz_%,$(FUZZ_TARGETS))
ALIASES  := themisdb-backup:themis-backup themisdb-restore:themis-restore

.PHONY: all check unit asan tsan fuzz fuzz-build deps demo install clean bench
all: $(TOOLS) $(FIXTURES) $(UNITS) $(FUZZ_UNITS)

$(BUILD)/obj/%.o: %.c $(LIB_HDR) $(wildcard tests/unit/*.h) $(wildcard tools/*.h) \
                  $(wildcard tests/fuzz/*.h)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	@$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/obj/tests/fuzz/driver.o: CFLAGS += -DFUZZ_CORPUS='"$(abspath tests/fuzz/corpus)"'

$(BUILD)/obj/%.o: %.cc $(LIB_HDR)
	@mkdir -p $(dir $@)
	@echo "  CXX   $<"
	@$(CXX) $(CXXFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	@rm -f $@ && ar rcs $@ $^

$(BUILD)/bin/%: $(BUILD)/obj/tools/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/bin/%: $(BUILD)/obj/fixtures/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/unit/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/fuzz_%: $(BUILD)/obj/tests/fuzz/%.o $(BUILD)/obj/tests/fuzz/driver.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/fuzz/%: $(BUILD)/obj/tests/fuzz/%.o $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	@$(CXX) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

# Tests find the programs through TB_BIN; prove runs C tests directly (-e '').
CHECK_CLI ?= $(sort $(wildcard tests/cli/*.t))
check: all
	TB_BIN=$(abspath $(BUILD)/bin) TB_BUILD=$(abspath $(BUILD)) \
	  prove -e '' $(PROVE_FLAGS) $(UNITS) $(FUZZ_UNITS) $(CHECK_CLI)

unit: $(UNITS) $(FUZZ_UNITS)
	prove -e '' $(PROVE_FLAGS) $(UNITS) $(FUZZ_UNITS)

# ASan/UBSan build in its own directory; RocksDB itself is not instrumented. Every unit
# test, and the shell tests that reach the most of the library in the least time: the
# backup format, pipes, damage, bad input, WAL decoding, stdout archives, stopping,
# incrementals, encryption, every write-policy test (51-59, 62) and WAL capture at
# WAL_ttl_seconds=0, hostile archives, streams and manifests (the whole set takes 20
# minutes under ASan): ASAN_TESTS=all runs all.
ASAN_TESTS ?= 10 12 13 15 21 33 34 35 39 51 52 53 54 55 56 57 58 59 62 63 64 65 66 67 68
asan:
	TB_TTL0_SECONDS=$${TB_TTL0_SECONDS:-15} $(MAKE) BUILD=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  CHECK_CLI="$(if $(filter all,$(ASAN_TESTS)),$(sort $(wildcard tests/cli/*.t)),$(sort $(foreach n,$(ASAN_TESTS),$(wildcard tests/cli/$(n)-*.t))))" check

# ThreadSanitizer over the unit tests of the code that starts threads of its own: the
# write-behind and zstd workers (stream), map-ahead, the content hash's workers (dbhash,
# content), the backup's hash thread, the restore's write-behind, S3 part uploads and the
# WAL tap. RocksDB itself is not instrumented. test_stream's multi-GiB pipe is cut to 256 MiB (TB_BIG_BYTES) here.
TSAN_UNITS ?= test_stream test_mapahead test_dbhash test_content test_backup test_restore test_s3 test_waltap
TSAN_BINS = $(patsubst %,build-tsan/tests/%,$(TSAN_UNITS))
tsan:
	$(MAKE) BUILD=build-tsan OPT=-O1 SAN=-fsanitize=thread $(TSAN_BINS)
	TB_BIG_BYTES=$${TB_BIG_BYTES:-268435456} TSAN_OPTIONS="halt_on_error=1 $${TSAN_OPTIONS:-}" \
	  prove -e '' $(PROVE_FLAGS) $(TSAN_BINS)

# libFuzzer: the library and the targets built by clang with coverage, ASan and UBSan in
# build-fuzz, each target run FUZZ_SECONDS on a copy of its corpus (new inputs stay in
# build-fuzz/corpus, findings go to build-fuzz/crashes); fails on any finding.
FUZZ_SECONDS ?= 600
FUZZ_SAN := -fsanitize=address,undefined,fuzzer-no-link -fno-omit-frame-pointer -fno-sanitize-recover=undefined
fuzz-build:
	$(MAKE) BUILD=build-fuzz CC=clang CXX=clang++ OPT=-O1 SAN="$(FUZZ_SAN)" \
	  $(patsubst %,build-fuzz/fuzz/%,$(FUZZ_TARGETS))
fuzz: fuzz-build
	./tests/fuzz/run.sh build-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS)

# Installs every package used to build and test (Debian 12, as root). Builds nothing, so
# the build directory stays the user's.
deps:
	./tests/deps.sh

demo: all
	TB_BIN=$(abspath $(BUILD)/bin) ./tests/demo.sh

bench: all
	TB_BIN=$(abspath $(BUILD)/bin) ./tests/bench/run.sh
	TB_BIN=$(abspath $(BUILD)/bin) ./tests/bench/s3.sh
	TB_BIN=$(abspath $(BUILD)/bin) ./tests/bench/wal-ttl0.sh

# Tools whose name starts with themis- are installed, and the alias names ThemisDB's
# upgrade guides use, as symlinks.
install: $(TOOLS)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(filter $(BUILD)/bin/themis-% $(BUILD)/bin/themisdb-admin,$(TOOLS)) $(DESTDIR)$(PREFIX)/bin/
	for a in $(ALIASES); do ln -sf $${a#*:} $(DESTDIR)$(PREFIX)/bin/$${a%%:*}; done
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 644 $(wildcard docs/man/*.1) $(DESTDIR)$(PREFIX)/share/man/man1/

clean:
	rm -rf build build-asan build-fuzz
.SECONDARY:
