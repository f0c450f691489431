# pexec - build, test and install.
#
#   make                 build/pexec, build/libpexec.a, build/plugins/*.so
#   make test            unit and end-to-end tests (Criterion)
#   make demo            factorial over examples/factorial/inputs.json
#   make SANITIZE=1 ...  the same with AddressSanitizer + UBSan (own build dir)
#   make install PREFIX=/usr/local DESTDIR=

CC       ?= cc
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
CPPFLAGS += -Icore -Isdk -D_GNU_SOURCE
CFLAGS   += -std=c11 $(OPT) $(WARN) $(SANFLAGS) -MMD -MP
LDFLAGS  += $(SANFLAGS)
LDLIBS   := -lcjson -ldl

PLUGIN_CFLAGS := -std=c11 $(OPT) $(WARN) $(SANFLAGS) -fPIC -fvisibility=hidden -Isdk
PLUGIN_LDFLAGS := -shared $(SANFLAGS)

# The directory bare plugin names are found in, compiled into the binary.
PLUGIN_DIR ?= $(abspath $(BUILD)/plugins)

CORE_SRCS := core/util.c core/code.c core/loader.c core/split.c core/frame.c \
             core/worker.c core/pool.c core/run.c core/cpus.c core/output.c core/job.c
CLI_SRCS  := core/cli.c
CORE_OBJS := $(CORE_SRCS:%.c=$(BUILD)/%.o)
CLI_OBJS  := $(CLI_SRCS:%.c=$(BUILD)/%.o)

PLUGINS       := factorial identity sleep
PLUGIN_SOS    := $(PLUGINS:%=$(BUILD)/plugins/%.so)
EXAMPLE_SOS   := $(BUILD)/examples/complex.so
TEST_PLUGINS  := $(patsubst tests/plugins/%.c,$(BUILD)/tests/plugins/%.so,$(wildcard tests/plugins/*.c))
TEST_SRCS     := $(wildcard tests/test_*.c)
TEST_BIN      := $(BUILD)/tests/run-tests

.PHONY: all test demo clean install deps check-deps
all: $(BUILD)/pexec $(BUILD)/libpexec.a $(PLUGIN_SOS) $(EXAMPLE_SOS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/core/cli.o: CPPFLAGS += -DPEXEC_PLUGIN_DIR='"$(PLUGIN_DIR)"'

$(BUILD)/libpexec.a: $(CORE_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/pexec: $(CLI_OBJS) $(BUILD)/libpexec.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/plugins/%.so: plugins/%.c sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) $(PLUGIN_LDFLAGS) -o $@ $< -lcjson

$(BUILD)/examples/%.so: examples/%/plugin.c sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) $(PLUGIN_LDFLAGS) -o $@ $< -lcjson

$(BUILD)/tests/plugins/%.so: tests/plugins/%.c sdk/pexec_plugin.h
	@mkdir -p $(@D)
	$(CC) $(PLUGIN_CFLAGS) $(PLUGIN_LDFLAGS) -o $@ $< -lcjson

$(TEST_BIN): $(TEST_SRCS:%.c=$(BUILD)/%.o) $(BUILD)/libpexec.a
	$(CC) $(LDFLAGS) -o $@ $^ -lcriterion $(LDLIBS)

$(BUILD)/tests/%.o: CPPFLAGS += -DPEXEC_TEST_BUILD='"$(abspath $(BUILD))"' -DPEXEC_SRC_DIR='"$(CURDIR)"'

# Installs missing system packages (or says which command would).
deps:
	@sh .ci/deps.sh

test: deps all $(TEST_PLUGINS) $(TEST_BIN)
	$(TEST_BIN) --jobs 2 $(TEST_ARGS)

demo: deps all
	$(BUILD)/pexec --plugin factorial examples/factorial/inputs.json

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
