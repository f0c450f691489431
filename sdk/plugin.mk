# plugin.mk - builds a pexec plugin from one C file, with pexec's own flags.
#
#   make -f path/to/pexec/sdk/plugin.mk hello.so      hello.c -> hello.so
#
# or, from a plugin's own Makefile:
#
#   include path/to/pexec/sdk/plugin.mk
#   all: hello.so
#
# The header is found beside this file, wherever it was included from (set
# PEXEC_SDK to use another sdk/ directory).  CFLAGS (default: -O2 -g -Wall
# -Wextra) can be replaced, and CPPFLAGS, LDFLAGS and LDLIBS (extra libraries)
# added, as usual; the flags a plugin cannot do without are kept apart in the
# PEXEC_PLUGIN_* variables and always used.
#
# -lcjson is always linked: a plugin without deserialize/serialize hooks
# receives and returns cJSON trees (see GUIDE.md beside this file), and pexec
# itself needs the library anyway.

# Read MAKEFILE_LIST now, while this file is its last word; an includer's
# later includes would change it.
ifndef PEXEC_SDK
PEXEC_SDK := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
endif

CFLAGS ?= -O2 -g -Wall -Wextra

# -std=c11 comes first so that a -std= in CFLAGS wins; -fvisibility=hidden
# keeps every symbol but pexec_plugin (PEXEC_EXPORT) private to the plugin.
PEXEC_PLUGIN_CFLAGS  := -std=c11 -fPIC -fvisibility=hidden -I$(PEXEC_SDK)
PEXEC_PLUGIN_LDFLAGS := -shared
PEXEC_PLUGIN_LDLIBS  := -lcjson

%.so: %.c $(PEXEC_SDK)/pexec_plugin.h
	$(CC) $(PEXEC_PLUGIN_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(PEXEC_PLUGIN_LDFLAGS) $(LDFLAGS) \
		-o $@ $< $(LDLIBS) $(PEXEC_PLUGIN_LDLIBS)
