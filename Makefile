# lthreading -- build, test, demo, bench, sanitizers.
#   make demo    build and run a real example (installs missing Debian packages)
#   make test    build and run the busted specs (installs missing Debian packages)
#   make bench   benchmarks beside C baselines
#   make asan / make tsan / make valgrind / make soak
#   make dist    release files in dist/: source tarball, .src.rock, a local rocks server

# The Lua it is built for and tested with: everything version-specific is in this block.
# Default: Debian's 5.4.  Another version, e.g. 5.5 built by tools/lua-from-source.sh:
#   make test LUA_VERSION=5.5 LUA=PREFIX/bin/lua LUA_INC=PREFIX/include
LUA_VERSION ?= 5.4
LUA      ?= lua$(LUA_VERSION)
LUA_INC  ?= $(firstword $(wildcard /usr/include/lua$(LUA_VERSION) /usr/local/include/lua$(LUA_VERSION) /usr/local/include))
# Lua as a static library, linked into the test hosts (tools/*.c) and the fuzzer.
LUA_A    ?= $(firstword $(wildcard /usr/lib/*/liblua$(LUA_VERSION).a $(LUA_INC)/../lib/liblua.a /usr/local/lib/liblua.a))
LUA_V_   := $(subst .,_,$(LUA_VERSION))
CPATH_VAR := LUA_CPATH_$(LUA_V_)
PATH_VAR  := LUA_PATH_$(LUA_V_)
# Debian packages the commands below need; installed only when something is missing.
# lua-luv and lua-cqueues: the event loops of the fileno() specs and examples.
DEB_PKGS = lua$(LUA_VERSION) liblua$(LUA_VERSION)-dev lua-busted luarocks lua-luv lua-cqueues
BUSTED   ?= busted --lua=$(LUA)
CC       ?= cc
OPT      ?= -O2 -g
WARN     = -Wall -Wextra -Wmissing-prototypes -Wshadow -Wno-unused-parameter
CFLAGS   += -std=c11 -fPIC $(OPT) $(WARN) -D_GNU_SOURCE -I$(LUA_INC)
LDFLAGS  += -shared
LIBS     = -lpthread -ldl

SRCS     = $(wildcard src/*.c)
HDRS     = $(wildcard src/*.h)
SPECS   ?= spec

SUDO     = $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# This directory's module first, then the caller's own paths (a Lua built from source needs
# them for busted's modules), then the defaults.  Processes the specs start inherit these;
# $$LT_LUA is the interpreter they run (the TSan run replaces it).
CPATH_ENV := $($(CPATH_VAR))
export $(CPATH_VAR) := $(CURDIR)/?.so;$(CPATH_ENV);;
export $(PATH_VAR)  := $(CURDIR)/?.lua;$(CURDIR)/spec/?.lua;$($(PATH_VAR));;
export LT_LUA ?= $(LUA)

# Everything built against Lua depends on this stamp, rewritten when the Lua changes, so that
# switching LUA_VERSION (or LUA_INC) rebuilds instead of loading a module for the other Lua.
LUA_STAMP := build/lua-version
$(shell mkdir -p build && [ "$$(cat $(LUA_STAMP) 2>/dev/null)" = "$(LUA_VERSION) $(LUA_INC)" ] \
  || echo "$(LUA_VERSION) $(LUA_INC)" >$(LUA_STAMP))

.PHONY: all deps test demo bench asan tsan valgrind soak fuzz dist clean race mutants

all: lthreading.so

# Link to a temporary name, then rename: a process loading the module never sees half a file.
lthreading.so: $(SRCS) $(HDRS) Makefile $(LUA_STAMP)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@.tmp.$$$$ $(SRCS) $(LIBS) && mv -f $@.tmp.$$$$ $@

deps:
	@missing=""; \
	command -v $(LUA) >/dev/null 2>&1 || missing="$$missing lua$(LUA_VERSION)"; \
	[ -f "$(LUA_INC)/lua.h" ] || missing="$$missing liblua$(LUA_VERSION)-dev"; \
	command -v busted >/dev/null 2>&1 || missing="$$missing lua-busted"; \
	command -v luarocks >/dev/null 2>&1 || missing="$$missing luarocks"; \
	if [ "$(LUA_VERSION)" = 5.4 ]; then \
	  $(LUA) -e 'require "luv"' >/dev/null 2>&1 || missing="$$missing lua-luv"; \
	  $(LUA) -e 'require "cqueues"' >/dev/null 2>&1 || missing="$$missing lua-cqueues"; \
	fi; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq $(DEB_PKGS) >/dev/null; \
	fi

# The Lua include directory is only known after deps ran: re-enter make for the build.
test: deps
	@$(MAKE) --no-print-directory lthreading.so build/foreign_thread build/cref/counter.so \
	  build/race/lthreading.so
	$(BUSTED) $(SPECS)

demo: deps
	@$(MAKE) --no-print-directory lthreading.so
	$(LUA) examples/demo.lua

bench: deps
	@$(MAKE) --no-print-directory lthreading.so bench/baseline
	$(LUA) bench/run.lua

# The module with its race windows held open (LT_TEST_WINDOW, src/lthreading.h) and every
# waiter's spin cut to a few polls (the queues', the adaptive spin of Event, Semaphore,
# Condition, Lock and join(), and the pool's result() waiters and idle workers), so that
# they register and park at once: a lost wake-up that takes millions of round trips to show
# in the real build shows in a few hundred (spec/race_spec.lua loads it from here; make
# mutants shows that it catches each broken variant of those protocols).
RACE_FLAGS = -DLT_TEST_WINDOWS -DLT_QSPIN_MAX_NS=1 -DLT_QSPIN_MIN_NS=1 -DLT_QSPIN_TIGHT=1 \
             -DLT_SPIN_MAX_NS=1 -DLT_SPIN_MIN_NS=1 -DLT_POOL_SPIN_NS=1e-9
build/race/lthreading.so: $(SRCS) $(HDRS) Makefile $(LUA_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(RACE_FLAGS) $(LDFLAGS) -o $@.tmp.$$$$ $(SRCS) $(LIBS) && mv -f $@.tmp.$$$$ $@

# Broken variants of those protocols (tools/mutants/*.patch), each built in a temporary copy:
# spec/race_spec.lua must fail on every one (tools/race-mutants.sh; about 3 minutes).
mutants: deps
	@$(MAKE) --no-print-directory lthreading.so
	BUSTED="$(BUSTED)" tools/race-mutants.sh

# Every spec on that build (SPECS as for make test).
race: deps
	@$(MAKE) --no-print-directory build/race/lthreading.so build/foreign_thread build/cref/counter.so
	$(CPATH_VAR)="$(CURDIR)/build/race/?.so;$(CPATH_ENV);;" $(BUSTED) $(SPECS)

# A host that runs Lua on its own pthread (Dummy threads); the thread spec builds it.
build/foreign_thread: tools/foreign_thread.c $(LUA_STAMP)
	@mkdir -p $(@D)
	$(CC) -std=c11 -O1 -g -I$(LUA_INC) -o $@ $< -Wl,-E \
	  -Wl,--whole-archive $(LUA_A) -Wl,--no-whole-archive -lpthread -lm -ldl

# The example C module whose objects cross by reference (include/lthreading_ref.h); the
# cref spec loads it from $$LT_CREF_DIR (default build/cref).  It never links lthreading.
CREF_FLAGS = -std=c11 -D_GNU_SOURCE -fPIC -shared -Wall -Wextra -Iinclude -I$(LUA_INC)
build/cref/counter.so: examples/cref/counter.c include/lthreading_ref.h
	@mkdir -p $(@D)
	$(CC) $(CREF_FLAGS) -O2 -g -o $@ $<

bench/baseline: bench/baseline.c $(LUA_STAMP)
	$(CC) -std=c11 -O2 -D_GNU_SOURCE -I$(LUA_INC) -o $@ $< -llua$(LUA_VERSION) -lpthread -lm -ldl

# Sanitizer builds go to build/<kind>/ (never clobbering ./lthreading.so); the specs then
# load that module.  ASan: its runtime is preloaded into the stock lua5.4.  TSan's runtime
# cannot be preloaded into an uninstrumented program, so TSan runs busted in build/tsan/lua,
# a minimal interpreter (tools/luahost.c) built with -fsanitize=thread over Debian's static
# liblua5.4.a ($(LUA_A)).  Subprocesses started by specs use $$LT_LUA (the same interpreter).
# TSan's "thread leak" reports are off: daemon threads are abandoned at exit by design (and
# may have started threads of their own); non-daemon joins are checked by the specs.
ASAN_FLAGS = -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
TSAN_FLAGS = -O1 -g -fsanitize=thread
ASAN_RT = $(shell $(CC) -print-file-name=libasan.so)

build/asan/lthreading.so: $(SRCS) $(HDRS) Makefile $(LUA_STAMP)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(ASAN_FLAGS) $(LDFLAGS) -o $@.tmp.$$$$ $(SRCS) $(LIBS) && mv -f $@.tmp.$$$$ $@

build/tsan/lthreading.so: $(SRCS) $(HDRS) Makefile $(LUA_STAMP)
	@mkdir -p $(@D)
	clang $(CFLAGS) $(TSAN_FLAGS) $(LDFLAGS) -o $@.tmp.$$$$ $(SRCS) $(LIBS) && mv -f $@.tmp.$$$$ $@

build/tsan/lua: tools/luahost.c $(LUA_STAMP)
	@mkdir -p $(@D)
	clang -std=c11 $(TSAN_FLAGS) -I$(LUA_INC) -o $@ $< -Wl,-E \
	  -Wl,--whole-archive $(LUA_A) -Wl,--no-whole-archive -lm -ldl

# intercept_tls_get_addr=0 (here and for TSan): the sanitizers' tracking of dynamic TLS (a
# dlopen'ed module's _Thread_local) guesses each block's size from glibc's malloc header,
# but the block comes from the sanitizer's own allocator: a wrong guess crashes LSan's
# tracer at exit ("Tracer caught signal 11") or TSan's shadow reset (SEGV in
# MemoryRangeSet) on a thread's first TLS access.  Nothing lthreading owns is reachable
# only from TLS, and the allocator already resets the block's shadow: nothing is lost.
build/asan/cref/counter.so: examples/cref/counter.c include/lthreading_ref.h
	@mkdir -p $(@D)
	$(CC) $(CREF_FLAGS) $(ASAN_FLAGS) -o $@ $<

asan: deps
	@$(MAKE) --no-print-directory build/asan/lthreading.so build/asan/cref/counter.so
	$(CPATH_VAR)="$(CURDIR)/build/asan/?.so;$(CPATH_ENV);;" LD_PRELOAD=$(ASAN_RT) LT_CREF_DIR=$(CURDIR)/build/asan/cref \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:fast_unwind_on_malloc=0:intercept_tls_get_addr=0 \
	  LSAN_OPTIONS=suppressions=$(CURDIR)/.ci/lsan.supp:print_suppressions=0 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(BUSTED) $(SPECS)

build/tsan/foreign_thread: tools/foreign_thread.c $(LUA_STAMP)
	@mkdir -p $(@D)
	clang -std=c11 $(TSAN_FLAGS) -I$(LUA_INC) -o $@ $< -Wl,-E \
	  -Wl,--whole-archive $(LUA_A) -Wl,--no-whole-archive -lpthread -lm -ldl

build/tsan/cref/counter.so: examples/cref/counter.c include/lthreading_ref.h
	@mkdir -p $(@D)
	clang $(CREF_FLAGS) $(TSAN_FLAGS) -o $@ $<

tsan: deps
	@$(MAKE) --no-print-directory build/tsan/lthreading.so build/tsan/lua build/tsan/foreign_thread build/tsan/cref/counter.so
	$(CPATH_VAR)="$(CURDIR)/build/tsan/?.so;$(CPATH_ENV);;" LT_LUA="$(CURDIR)/build/tsan/lua" LT_CREF_DIR=$(CURDIR)/build/tsan/cref \
	  LT_FOREIGN="$(CURDIR)/build/tsan/foreign_thread" \
	  TSAN_OPTIONS="suppressions=$(CURDIR)/.ci/tsan.supp halt_on_error=0 exitcode=66 report_thread_leaks=0 intercept_tls_get_addr=0" \
	  build/tsan/lua $$(command -v busted) $(SPECS)

# memcheck over the core specs (the whole suite is slow under valgrind): no definite or
# indirect leak, no memory error.  Prints busted's summary; exits non-zero on any error.
VG_SPECS ?= spec/marshal_spec.lua spec/thread_spec.lua spec/lock_spec.lua
valgrind: deps
	@$(MAKE) --no-print-directory lthreading.so build/foreign_thread build/cref/counter.so
	valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
	  --show-leak-kinds=definite,indirect --suppressions=$(CURDIR)/.ci/valgrind.supp \
	  $(LUA) $$(command -v busted) $(VG_SPECS)
	valgrind --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=99 \
	  --show-leak-kinds=definite,indirect -q $(LUA) tools/daemon_exit.lua

# libFuzzer over the marshaler (clang; FUZZ_SECONDS, default 60).  Corpus: fuzz/corpus.
FUZZ_SECONDS ?= 60
build/fuzz_marshal: fuzz/fuzz_marshal.c $(SRCS) $(HDRS) $(LUA_STAMP)
	@mkdir -p $(@D)
	clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -D_GNU_SOURCE -I$(LUA_INC) -Isrc \
	  -o $@ fuzz/fuzz_marshal.c $(SRCS) $(LUA_A) -lm -ldl -lpthread

fuzz: deps build/fuzz_marshal
	@mkdir -p fuzz/corpus
	build/fuzz_marshal fuzz/regressions/*
	build/fuzz_marshal -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -print_final_stats=1 \
	  -artifact_prefix=fuzz/regressions/ fuzz/corpus

soak: deps
	@$(MAKE) --no-print-directory lthreading.so
	$(LUA) bench/soak.lua

# The version is LT_VERSION in src/lthreading.h; the files come from the committed HEAD (see
# tools/dist.sh).  Then: luarocks install lthreading --only-server=file://$(CURDIR)/dist
VERSION = $(shell sed -n 's/^\#define LT_VERSION *"\([^"]*\)".*/\1/p' src/lthreading.h)
dist: deps
	LUA=$(LUA) tools/dist.sh $(VERSION) $(LUA_VERSION)

clean:
	rm -rf lthreading.so bench/baseline src/*.o build dist
