# pexec - build, test and install.
#
#   make                 build/pexec, build/libpexec.a, build/libpexec.so.0,
#                        build/plugins/*.so
#   make test            unit and end-to-end tests (Criterion)
#   make demo            factorial over examples/factorial/inputs.json
#   make SANITIZE=1 ...  the same with AddressSanitizer + UBSan (own build dir)
#   make rust            the Rust example plugin, with cargo (make test builds it
#                        where cargo is installed)
#   make install PREFIX=/usr/local DESTDIR=
#   make uninstall PREFIX=/usr/local DESTDIR=

CC       ?= cc
MPICC    ?= mpicc
PREFIX   ?= /usr/local
DESTDIR  ?=
SANITIZE ?=

ifeq ($(SANITIZE),1)
BUILD    ?= build-asan
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT      ?= -O1 -g
else
BUILD    ?= build
SANFLAGS :=
OPT      ?= -O2 -g
endif

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Wno-format-nonliteral
# Include paths show the layers: the library sees its own headers; the
# command (core/cli/) only the public ones; pexec-mpi (core/mpi/) the public
# ones and the command's main (core/cli/cli.h).
PUBLIC_INC := -Icore/include -Isdk
CPPFLAGS += -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) $(WARN) $(SANFLAGS) -MMD -MP
LDFLAGS  += $(SANFLAGS)
LDLIBS   := -lcjson -ldl
ifeq ($(SANITIZE),1)
# ASan's __cxa_throw interceptor looks libstdc++ up once, at start: a C++
# plugin dlopen()ed later that throws would stop at its CHECK unless
# libstdc++ is loaded from the start.  libubsan happens to bring it; say so.
LDLIBS   += -Wl,--push-state,--no-as-needed -lstdc++ -Wl,--pop-state
endif

PLUGIN_CFLAGS := -std=c11 $(OPT) $(WARN) $(SANFLAGS) -fPIC -fvisibility=hidden -Isdk
PLUGIN_LDFLAGS := -shared $(SANFLAGS)
# C++ plugins (examples/cpp): C++20, for descriptors written as in C.
CXX_WARN := -Wall -Wextra -Wpedantic -Wshadow -Wold-style-cast -Wformat=2 -Wno-format-nonliteral
PLUGIN_CXXFLAGS := -std=c++20 $(OPT) $(CXX_WARN) $(SANFLAGS) -fPIC -fvisibility=hidden -Isdk
ifeq ($(SANITIZE),1)
# g++ 12 under ASan warns, wrongly, of std::function inside libstdc++'s <regex>.
PLUGIN_CXXFLAGS += -Wno-maybe-uninitialized
endif

VERSION := $(shell sed -n 's/^.define PEXEC_VERSION "\(.*\)"$$/\1/p' core/include/pexec.h)

# The directory bare plugin names are found in last, compiled into the library.
PLUGIN_DIR ?= $(abspath $(BUILD)/plugins)

CORE_SRCS := core/lib/util.c core/lib/code.c core/lib/loader.c core/lib/manifest.c \
             core/lib/cpus.c core/lib/frame.c core/lib/item.c core/lib/instance.c core/lib/run.c \
             core/lib/split/split.c core/lib/split/split_scan.c core/lib/split/split_text.c \
             core/lib/split/boundary.c \
             core/lib/pool/loop.c core/lib/pool/fault.c core/lib/pool/worker.c \
             core/lib/pool/chunk.c core/lib/pool/arena.c core/lib/pool/child.c \
             core/lib/pool/contain.c core/lib/pool/span.c \
             core/lib/job/output.c core/lib/job/journal.c core/lib/job/inputs.c core/lib/job/lock.c core/lib/job/spans.c core/lib/job/landing.c \
             core/lib/job/progress.c core/lib/job/resume.c core/lib/job/job.c
CLI_SRCS  := core/cli/main.c core/cli/cli.c core/cli/report.c core/cli/tools.c core/cli/new.c \
             core/cli/plugins.c core/cli/list.c core/cli/suggest.c
# pexec-mpi (make mpi, built with mpicc).
MPI_SRCS  := core/mpi/main.c core/mpi/coord.c core/mpi/coord_spans.c core/mpi/link.c \
             core/mpi/server.c core/mpi/server_spans.c
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o)
# libpexec.so.0 is built from position-independent copies of the same
# objects (the static archive and the pexec binary keep the plain ones).
PIC_OBJS  := $(CORE_SRCS:%.c=$(BUILD)/pic/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/%.o)

PLUGINS       := factorial identity sleep wordcount

# The python plugin (plugins/python.c, python_json.c) hosts CPython: built
# only where the Python headers and embedding library are installed
# (Debian: python3-dev, which `make deps` installs), found through
# pkg-config's python3-embed; nothing else in pexec needs Python.  Its
# include directory goes on -isystem, so that -Wextra judges only our code.
PYTHON_PC     ?= python3-embed
PYTHON_FOUND  := $(shell pkg-config --exists $(PYTHON_PC) 2>/dev/null && echo yes)
ifeq ($(PYTHON_FOUND),yes)
PLUGINS       += python
PYTHON_CFLAGS := $(patsubst -I%,-isystem %,$(shell pkg-config --cflags $(PYTHON_PC)))
PYTHON_LIBS   := $(shell pkg-config --libs $(PYTHON_PC))
# The interpreter whose standard library and site-packages the plugin uses.
PYTHON_EXE    := $(shell pkg-config --variable=exec_prefix $(PYTHON_PC))/bin/python$(shell pkg-config --modversion $(PYTHON_PC))
endif
PLUGIN_SOS    := $(PLUGINS:%=$(BUILD)/plugins/%.so)
EXAMPLE_SOS   := $(BUILD)/examples/complex.so $(BUILD)/examples/cpp.so
TEST_PLUGINS  := $(patsubst tests/plugins/%.c,$(BUILD)/tests/plugins/%.so,$(wildcard tests/plugins/*.c))
TEST_SRCS     := $(wildcard tests/test_*.c) tests/helpers.c tests/helpers_resume.c tests/mpi_run.c tests/split_run.c tests/fault_checks.c \
                 tests/abi/layout_v1.c
TEST_BIN      := $(BUILD)/tests/run-tests

.PHONY: all test demo clean install deps deps-test check-deps
all: $(BUILD)/pexec $(BUILD)/libpexec.a $(BUILD)/libpexec.so $(PLUGIN_SOS) $(EXAMPLE_SOS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -c -o $@ $<

$(CORE_OBJS) $(PIC_OBJS): CPPFLAGS += $(PUBLIC_INC) -Icore/lib
$(CLI_OBJS): CPPFLAGS += $(PUBLIC_INC)

# The library's last plugin directory (pexec_plugin_dir()): the build's own
# here; `make install` rebuilds loader.c with the installed one.
$(BUILD)/core/lib/loader.o $(BUILD)/pic/core/lib/loader.o: CPPFLAGS += -DPEXEC_PLUGIN_DIR='"$(PLUGIN_DIR)"'
# What `pexec new` skeletons include plugin.mk from (installed: PEXEC_SDKDIR).
$(BUILD)/core/cli/new.o: CPPFLAGS += -DPEXEC_SDK_DIR='"$(CURDIR)/sdk"'

$(BUILD)/libpexec.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

# The shared library: soname libpexec.so.0, exporting only the public API
# (core/lib/libpexec.map); libpexec.so.0 and libpexec.so are links to it.
SONAME    := libpexec.so.0
SHLIB_LDFLAGS = -shared -Wl,-soname,$(SONAME) -Wl,--version-script=core/lib/libpexec.map \
                -Wl,--no-undefined -Wl,-z,defs $(SANFLAGS)

$(BUILD)/libpexec.so.$(VERSION): $(PIC_OBJS) core/lib/libpexec.map
	$(CC) $(SHLIB_LDFLAGS) -o $@ $(PIC_OBJS) $(LDLIBS)

$(BUILD)/libpexec.so: $(BUILD)/libpexec.so.$(VERSION)
	ln -sf libpexec.so.$(VERSION) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $@

$(BUILD)/pexec: $(CLI_OBJS) $(BUILD)/libpexec.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/plugins/%.so: plugins/%.c sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) $(PLUGIN_LDFLAGS) -o $@ $< -lcjson

$(BUILD)/plugins/python.so: plugins/python.c plugins/python_json.c plugins/python_json.h \
                            sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) $(PYTHON_CFLAGS) -DPEXEC_PYTHON_EXE='"$(PYTHON_EXE)"' \
		$(PLUGIN_LDFLAGS) -o $@ plugins/python.c plugins/python_json.c $(PYTHON_LIBS) -lcjson

$(BUILD)/examples/%.so: examples/%/plugin.c sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) $(PLUGIN_LDFLAGS) -o $@ $< -lcjson

$(BUILD)/examples/%.so: examples/%/plugin.cc sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(CXX) $(PLUGIN_CXXFLAGS) $(PLUGIN_LDFLAGS) -o $@ $< -lcjson

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) $(PLUGIN_LDFLAGS) -o $@ $< -lcjson

$(TEST_BIN): $(TEST_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libpexec.a | $(BUILD)/libpexec.so
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(LDLIBS)

$(BUILD)/tests/%.o: CPPFLAGS += $(PUBLIC_INC) -Icore/lib -DPEXEC_TEST_BUILD='"$(abspath $(BUILD))"' -DPEXEC_SRC_DIR='"$(CURDIR)"'

# Installs missing system packages (or says which command would).
deps:
	@sh .ci/deps.sh

# Ajv, the JSON Schema validator the tests check manifests with, from npm.
SCHEMA_TOOLS := $(BUILD)/schema/node_modules/ajv/package.json
$(SCHEMA_TOOLS): tests/schema/package.json | deps-test
	@mkdir -p $(BUILD)/schema
	cp tests/schema/package.json $(BUILD)/schema/package.json
	cd $(BUILD)/schema && npm install --no-audit --no-fund --loglevel=error >/dev/null
	@touch $@

deps-test:
	@sh .ci/deps.sh test

# The tests run with a per-user plugin directory of their own (XDG_DATA_HOME),
# so that plugins the user has installed do not shadow the build's.
# pexec-mpi's tests run where Open MPI is installed, and the Rust example's
# where cargo is (deps-test installs both where it can); each skips, saying
# so, where it is not.
test: deps-test all $(TEST_PLUGINS) $(TEST_BIN) $(SCHEMA_TOOLS)
	@$(MAKE) --no-print-directory python-plugin
	@if command -v $(MPICC) >/dev/null; then $(MAKE) --no-print-directory mpi; \
	else echo "make test: no $(MPICC): the pexec-mpi tests will be skipped" >&2; fi
	@if [ -n "$(CARGO)" ]; then $(MAKE) --no-print-directory rust; \
	else echo "make test: no cargo: the Rust example's tests will be skipped" >&2; fi
	LSAN_OPTIONS="suppressions=$(CURDIR)/tests/lsan.supp:print_suppressions=0 $$LSAN_OPTIONS" \
	XDG_DATA_HOME=$(abspath $(BUILD))/tests/xdg-data \
		$(TEST_BIN) --jobs 2 $(TEST_ARGS)

# The python plugin where Python can be embedded; a sub-make of `test`,
# so that it sees a python3-dev that deps-test has just installed.
.PHONY: python-plugin
ifeq ($(PYTHON_FOUND),yes)
python-plugin: $(BUILD)/plugins/python.so
else
python-plugin:
	@echo "make: no pkg-config $(PYTHON_PC) (Debian: apt-get install python3-dev): the python plugin is not built, its tests will be skipped" >&2
endif

demo: deps all
	$(BUILD)/pexec --plugin factorial examples/factorial/inputs.json

clean:
	rm -rf build build-asan

# Not cargo's .d files (make rust), which are cargo's own business.
-include $(shell find $(BUILD) -path $(BUILD)/cargo -prune -o -name '*.d' -print 2>/dev/null)

# ---- hardening: libFuzzer and valgrind ----
#
#   make fuzz [FUZZ_SECONDS=30]  builds the splitter and frame decoder fuzzers
#                                (clang: libFuzzer + ASan + UBSan) in build/fuzz/
#                                and runs each for FUZZ_SECONDS over a fresh copy
#                                of tests/fuzz/corpus/; any crash, hang, leak or
#                                broken invariant fails, its input kept in
#                                build/fuzz/artifacts/ (save it in tests/fuzz/crashes/)
#   make valgrind                small real jobs (normal build) under memcheck; no
#                                error or definite/indirect leak in the parent or
#                                any worker (tests/valgrind/run.sh reads every log)

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_DIR     := build/fuzz
FUZZ_CFLAGS  := -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -fno-omit-frame-pointer -Wall -Wextra
FUZZ_SRCS    := core/lib/split/split.c core/lib/split/split_scan.c core/lib/split/split_text.c \
                core/lib/util.c core/lib/code.c \
                core/lib/frame.c
FUZZERS      := split frame
# -timeout: seconds one input may take (a hang is a failure); 0 as
# -max_total_time would mean forever, so FUZZ_SECONDS must be positive.
FUZZ_RUNFLAGS = -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1

# The splitter fuzzer cuts the reads of its descriptor short (see fuzz_split.c).
$(FUZZ_DIR)/fuzz_split: FUZZ_LDFLAGS := -Wl,--wrap=read

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_SRCS) $(wildcard core/lib/*.h core/lib/*/*.h) sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(PUBLIC_INC) -Icore/lib -D_GNU_SOURCE -o $@ $< $(FUZZ_SRCS) $(FUZZ_LDFLAGS)

.PHONY: fuzz fuzz-build valgrind
fuzz-build: $(FUZZERS:%=$(FUZZ_DIR)/fuzz_%)

fuzz: fuzz-build
	@status=0; \
	for f in $(FUZZERS); do \
		rm -rf $(FUZZ_DIR)/corpus/$$f; \
		mkdir -p $(FUZZ_DIR)/corpus/$$f $(FUZZ_DIR)/artifacts; \
		cp tests/fuzz/corpus/$$f/* $(FUZZ_DIR)/corpus/$$f/; \
		dict=; [ $$f = split ] && dict=-dict=tests/fuzz/json.dict; \
		echo "fuzz_$$f: $(FUZZ_SECONDS) s over $$(ls tests/fuzz/corpus/$$f | wc -l) seeds"; \
		if $(FUZZ_DIR)/fuzz_$$f $(FUZZ_RUNFLAGS) $$dict \
			-artifact_prefix=$(FUZZ_DIR)/artifacts/$$f- \
			$(FUZZ_DIR)/corpus/$$f >$(FUZZ_DIR)/fuzz_$$f.log 2>&1; then \
			grep -E '^(Done |stat::number_of_executed_units|stat::peak_rss)' $(FUZZ_DIR)/fuzz_$$f.log | sed "s/^/fuzz_$$f: /"; \
			grep -E '^#[0-9]+' $(FUZZ_DIR)/fuzz_$$f.log | tail -n 1 | sed "s/^/fuzz_$$f: /"; \
		else \
			tail -n 60 $(FUZZ_DIR)/fuzz_$$f.log; \
			echo "fuzz_$$f: FAILED (log $(FUZZ_DIR)/fuzz_$$f.log; input in $(FUZZ_DIR)/artifacts/)"; \
			status=1; \
		fi; \
	done; \
	exit $$status

ifeq ($(SANITIZE),1)
valgrind:
	@echo "make valgrind: not with SANITIZE=1 (valgrind runs the normal build)" >&2; exit 1
else
valgrind: deps all $(BUILD)/tests/plugins/faults.so
	tests/valgrind/run.sh $(BUILD) build/valgrind
endif

# ---- benchmarks (bench/README.md) ----
#
#   make bench                       quick mode: R=3, about a minute
#   make bench BENCH_ARGS=--full     the issue's sizes, R=5
#   make bench BENCH_ARGS=--scaling  factorial throughput against -j
#   make bench-mpi                   pexec-mpi with 1, 2, 4 ranks (bench/RESULTS-mpi.md)

PYTHON     ?= python3
BENCH_ARGS ?=

.PHONY: bench bench-mpi
bench: all
	CC="$(CC)" $(PYTHON) bench/run.py --build $(BUILD) $(BENCH_ARGS)

bench-mpi: mpi
	CC="$(CC)" $(PYTHON) bench/run.py --build $(BUILD) --mpi $(BENCH_ARGS)

# ---- install ----
#
#   make install [PREFIX=/usr/local] [DESTDIR=]    make uninstall (the same)
#
# Installs the pexec binary, libpexec.a with its public header (pexec.h; no
# other core/ header), the plugin author's header, the SDK (plugin.mk, header
# and guide, which `pexec new` skeletons include), two pkg-config files
# (pexec-plugin for plugin authors, libpexec for programs embedding the
# library), the shipped plugins, the man pages pexec(1), pexec-plugin(7), and
# bash and zsh completion (completion/).
#
# The installed binary is linked apart ($(BUILD)/installed/pexec) with the
# installed directories compiled in: bare plugin names are found in
# PEXEC_PLUGINDIR, and `pexec new` uses PEXEC_SDKDIR (or, first, the SDK
# beside the binary, BINDIR/../share/pexec/sdk, which also works inside
# DESTDIR).  DESTDIR only stages: nothing installed depends on it.

BINDIR          ?= $(PREFIX)/bin
LIBDIR          ?= $(PREFIX)/lib
INCLUDEDIR      ?= $(PREFIX)/include
DATADIR         ?= $(PREFIX)/share
MANDIR          ?= $(DATADIR)/man
PKGCONFIGDIR    ?= $(LIBDIR)/pkgconfig
PEXEC_PLUGINDIR ?= $(LIBDIR)/pexec/plugins
PEXEC_SDKDIR    ?= $(DATADIR)/pexec/sdk
BASHCOMPDIR     ?= $(DATADIR)/bash-completion/completions
ZSHCOMPDIR      ?= $(DATADIR)/zsh/site-functions
INSTALL         ?= install


INST_BUILD := $(BUILD)/installed
# The CLI files with a directory compiled in; the others are shared with build/pexec.
INST_REBUILT := core/cli/cli.c core/cli/new.c
INST_OBJS := $(patsubst %.c,$(INST_BUILD)/%.o,$(filter $(INST_REBUILT),$(CLI_SRCS))) \
             $(patsubst %.c,$(BUILD)/%.o,$(filter-out $(INST_REBUILT),$(CLI_SRCS)))
INST_DIRS := $(PREFIX) $(LIBDIR) $(INCLUDEDIR) $(PEXEC_PLUGINDIR) $(PEXEC_SDKDIR) $(VERSION)
PC_SUBST  := sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(LIBDIR)|g' \
                 -e 's|@INCLUDEDIR@|$(INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
                 -e 's|@PLUGINDIR@|$(PEXEC_PLUGINDIR)|g'

.PHONY: install uninstall FORCE

# Rewritten only when the directories change, so that a new PREFIX rebuilds
# what has them compiled in, and the same one rebuilds nothing.
$(INST_BUILD)/dirs: FORCE
	@mkdir -p $(@D)
	@echo '$(INST_DIRS)' | cmp -s - $@ || echo '$(INST_DIRS)' >$@

$(INST_BUILD)/core/%.o: core/%.c $(INST_BUILD)/dirs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PUBLIC_INC) -DPEXEC_PLUGIN_DIR='"$(PEXEC_PLUGINDIR)"' -DPEXEC_SDK_DIR='"$(PEXEC_SDKDIR)"' \
		$(CFLAGS) -c -o $@ $<

# The installed libraries: the build's objects, but loader.c's, which has
# the installed plugin directory compiled in.
INST_LIB_OBJS := $(INST_BUILD)/core/lib/loader.o $(filter-out %/loader.o,$(CORE_OBJS))
INST_PIC_OBJS := $(INST_BUILD)/pic/core/lib/loader.o $(filter-out %/loader.o,$(PIC_OBJS))
$(INST_BUILD)/core/lib/loader.o: CPPFLAGS += -Icore/lib

$(INST_BUILD)/pic/core/lib/loader.o: core/lib/loader.c $(INST_BUILD)/dirs
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(PUBLIC_INC) -Icore/lib -DPEXEC_PLUGIN_DIR='"$(PEXEC_PLUGINDIR)"' \
		$(CFLAGS) -fPIC -c -o $@ $<

$(INST_BUILD)/libpexec.a: $(INST_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(INST_BUILD)/libpexec.so.$(VERSION): $(INST_PIC_OBJS) core/lib/libpexec.map
	$(CC) $(SHLIB_LDFLAGS) -o $@ $(INST_PIC_OBJS) $(LDLIBS)

$(INST_BUILD)/pexec: $(INST_OBJS) $(INST_BUILD)/libpexec.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(INST_BUILD)/pexec-mpi: $(MPI_SRCS:%.c=$(BUILD)/%.o) $(filter-out %/main.o,$(INST_OBJS)) $(INST_BUILD)/libpexec.a
	$(MPICC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(INST_BUILD)/pexec-plugin.pc: sdk/pexec-plugin.pc.in $(INST_BUILD)/dirs
	$(PC_SUBST) $< >$@

$(INST_BUILD)/libpexec.pc: core/lib/libpexec.pc.in $(INST_BUILD)/dirs
	$(PC_SUBST) $< >$@

install: all $(INST_BUILD)/pexec $(INST_BUILD)/libpexec.a $(INST_BUILD)/libpexec.so.$(VERSION) \
         $(INST_BUILD)/pexec-plugin.pc $(INST_BUILD)/libpexec.pc
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCLUDEDIR)/pexec \
		$(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(PEXEC_PLUGINDIR) $(DESTDIR)$(PEXEC_SDKDIR) \
		$(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 \
		$(DESTDIR)$(BASHCOMPDIR) $(DESTDIR)$(ZSHCOMPDIR)
	$(INSTALL) -m 755 $(INST_BUILD)/pexec $(DESTDIR)$(BINDIR)/pexec
	@if command -v $(MPICC) >/dev/null; then \
		$(MAKE) --no-print-directory $(INST_BUILD)/pexec-mpi && \
		echo "$(INSTALL) -m 755 $(INST_BUILD)/pexec-mpi $(DESTDIR)$(BINDIR)/pexec-mpi" && \
		$(INSTALL) -m 755 $(INST_BUILD)/pexec-mpi $(DESTDIR)$(BINDIR)/pexec-mpi; \
	else echo "make install: no $(MPICC): pexec-mpi not installed"; fi
	$(INSTALL) -m 644 $(INST_BUILD)/libpexec.a $(DESTDIR)$(LIBDIR)/libpexec.a
	$(INSTALL) -m 755 $(INST_BUILD)/libpexec.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libpexec.so.$(VERSION)
	ln -sf libpexec.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libpexec.so
	$(INSTALL) -m 644 core/include/pexec.h sdk/pexec_plugin.h $(DESTDIR)$(INCLUDEDIR)/pexec/
	$(INSTALL) -m 644 sdk/plugin.mk sdk/pexec_plugin.h sdk/GUIDE.md $(DESTDIR)$(PEXEC_SDKDIR)/
	$(INSTALL) -m 644 $(INST_BUILD)/pexec-plugin.pc $(INST_BUILD)/libpexec.pc $(DESTDIR)$(PKGCONFIGDIR)/
	$(INSTALL) -m 644 $(PLUGIN_SOS) $(DESTDIR)$(PEXEC_PLUGINDIR)/
	$(INSTALL) -m 644 docs/pexec.1 $(DESTDIR)$(MANDIR)/man1/pexec.1
	$(INSTALL) -m 644 docs/pexec-plugin.7 $(DESTDIR)$(MANDIR)/man7/pexec-plugin.7
	$(INSTALL) -m 644 completion/pexec.bash $(DESTDIR)$(BASHCOMPDIR)/pexec
	$(INSTALL) -m 644 completion/pexec.bash $(DESTDIR)$(BASHCOMPDIR)/pexec-mpi
	$(INSTALL) -m 644 completion/_pexec $(DESTDIR)$(ZSHCOMPDIR)/_pexec

# Removes what install wrote, and the directories that were pexec's own if
# nothing else is left in them (plugins installed by hand stay).
uninstall:
	rm -f $(DESTDIR)$(BINDIR)/pexec $(DESTDIR)$(BINDIR)/pexec-mpi $(DESTDIR)$(LIBDIR)/libpexec.a \
		$(DESTDIR)$(LIBDIR)/libpexec.so.$(VERSION) $(DESTDIR)$(LIBDIR)/$(SONAME) $(DESTDIR)$(LIBDIR)/libpexec.so \
		$(DESTDIR)$(INCLUDEDIR)/pexec/pexec.h $(DESTDIR)$(INCLUDEDIR)/pexec/pexec_plugin.h \
		$(addprefix $(DESTDIR)$(PEXEC_SDKDIR)/,plugin.mk pexec_plugin.h GUIDE.md) \
		$(DESTDIR)$(PKGCONFIGDIR)/pexec-plugin.pc $(DESTDIR)$(PKGCONFIGDIR)/libpexec.pc \
		$(PLUGINS:%=$(DESTDIR)$(PEXEC_PLUGINDIR)/%.so) \
		$(DESTDIR)$(MANDIR)/man1/pexec.1 $(DESTDIR)$(MANDIR)/man7/pexec-plugin.7 \
		$(DESTDIR)$(BASHCOMPDIR)/pexec $(DESTDIR)$(BASHCOMPDIR)/pexec-mpi \
		$(DESTDIR)$(ZSHCOMPDIR)/_pexec
	@for d in $(DESTDIR)$(INCLUDEDIR)/pexec $(DESTDIR)$(PEXEC_SDKDIR) $(DESTDIR)$(DATADIR)/pexec \
		$(DESTDIR)$(PEXEC_PLUGINDIR) $(DESTDIR)$(LIBDIR)/pexec; do \
		rmdir "$$d" 2>/dev/null || true; \
	done

# ---- tests of install and of the plugin ABI ----

# test_install runs `make install` itself, with this build's settings.
$(BUILD)/tests/test_install.o $(BUILD)/tests/test_shlib.o: CPPFLAGS += -DPEXEC_TEST_MAKEVARS='"BUILD=$(BUILD) SANITIZE=$(SANITIZE)"' \
	-DPEXEC_TEST_SANFLAGS='"$(SANFLAGS)"'
# A plugin built against the first published header (tests/abi/): it must
# keep loading in every pexec of ABI 1.
$(BUILD)/tests/plugins/abi_v1.so: tests/abi/pexec_plugin_v1.h

# ---- the Rust example: examples/rust, a cdylib built with cargo ----
#
#   make rust            $(BUILD)/cargo/release/libcollatz.so, where cargo is
#                        installed; nothing else in pexec needs Rust
#
# Debian's cargo comes first, with the rustc beside it rather than whichever
# is first on PATH: CI has bookworm's (rustc 1.63), which the crate must
# build with, and a rustup toolchain may be newer.  Cargo's output stays in
# the build directory (CARGO_TARGET_DIR); only Cargo.lock, committed, is in
# the crate.  Cargo decides for itself what to rebuild, so make always asks.
CARGO ?= $(firstword $(wildcard /usr/bin/cargo) $(shell command -v cargo 2>/dev/null))
RUSTC ?= $(wildcard $(dir $(CARGO))rustc)
RUST_SO := $(BUILD)/cargo/release/libcollatz.so

.PHONY: rust
rust:
	@test -n "$(CARGO)" || { echo "make rust: no cargo: install it (apt-get install cargo)" >&2; exit 2; }
	CARGO_TARGET_DIR=$(abspath $(BUILD)/cargo) $(if $(RUSTC),RUSTC=$(RUSTC)) \
		$(CARGO) build --release --offline --manifest-path examples/rust/Cargo.toml

# ---- pexec-mpi: the same command across MPI ranks (Open MPI) ----
#
#   make mpi             build/pexec-mpi, when mpicc is installed; the core
#                        build never needs MPI
MPI_OBJS := $(MPI_SRCS:%.c=$(BUILD)/%.o) $(filter-out $(BUILD)/core/cli/main.o,$(CLI_OBJS))

.PHONY: mpi
mpi: all $(BUILD)/pexec-mpi

$(MPI_SRCS:%.c=$(BUILD)/%.o): $(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	@command -v $(MPICC) >/dev/null || { echo "make mpi: no $(MPICC): install Open MPI (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 2; }
	$(MPICC) $(CPPFLAGS) $(PUBLIC_INC) -Icore/cli $(CFLAGS) -c -o $@ $<

$(BUILD)/pexec-mpi: $(MPI_OBJS) $(BUILD)/libpexec.a
	$(MPICC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
