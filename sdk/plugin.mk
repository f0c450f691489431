# plugin.mk - builds a pexec plugin from one C or C++ file, with pexec's own
# flags.
#
#   make -f path/to/pexec/sdk/plugin.mk hello.so      hello.c -> hello.so
#                                                     (or hello.cc, hello.cpp)
#
# or, from a plugin's own Makefile:
#
#   include path/to/pexec/sdk/plugin.mk
#   all: hello.so
#
# The header is found beside this file, wherever it was included from (set
# PEXEC_SDK to use another sdk/ directory).  CFLAGS and, for C++, CXXFLAGS
# (default, both: -O2 -g -Wall -Wextra) can be replaced, and CPPFLAGS,
# LDFLAGS and LDLIBS (extra libraries) added, as usual; the flags a plugin
# cannot do without are kept apart in the PEXEC_PLUGIN_* variables and always
# used.  C is built as C11 and C++ as C++20, the first C++ whose designated
# initializers write a descriptor as C does; a -std= in CFLAGS or CXXFLAGS
# wins (C++17 plugins: see GUIDE.md).  A C++ plugin is linked by $(CXX), so
# libstdc++ comes along.
#
# Installing: a plugin's Makefile can install into PEXEC_PLUGINDIR, the
# directory the installed pexec searches (what `pkg-config --variable=plugindir
# pexec-plugin` says; give PEXEC_PLUGINDIR=DIR where it says nothing), or
# into PEXEC_USER_PLUGINDIR, the user's own ($XDG_DATA_HOME/pexec/plugins,
# by default ~/.local/share/pexec/plugins), which needs no root:
#
#   install: hello.so pexec-plugindir
#   	$(INSTALL) -d '$(DESTDIR)$(PEXEC_PLUGINDIR)'
#   	$(INSTALL) -m 644 hello.so '$(DESTDIR)$(PEXEC_PLUGINDIR)/'
#
# `pexec new` writes install, install-user and uninstall targets like these.
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
CXXFLAGS ?= -O2 -g -Wall -Wextra
INSTALL ?= install

PKG_CONFIG ?= pkg-config
PEXEC_PLUGINDIR ?= $(shell $(PKG_CONFIG) --variable=plugindir pexec-plugin 2>/dev/null)
PEXEC_USER_PLUGINDIR ?= $(if $(filter /%,$(XDG_DATA_HOME)),$(XDG_DATA_HOME),$(HOME)/.local/share)/pexec/plugins

# Stops an install with no directory to go to, saying what to do.
.PHONY: pexec-plugindir
pexec-plugindir:
	@test -n '$(PEXEC_PLUGINDIR)' || { echo "make: no plugin directory: pkg-config knows no" \
		"pexec-plugin (is pexec installed, PKG_CONFIG_PATH set?); give PEXEC_PLUGINDIR=DIR," \
		"or make install-user for $(PEXEC_USER_PLUGINDIR)" >&2; exit 2; }

# -std= comes first so that a -std= in CFLAGS or CXXFLAGS wins;
# -fvisibility=hidden keeps every symbol but pexec_plugin (PEXEC_EXPORT)
# private to the plugin (in C++, but for what libstdc++'s headers export
# themselves: see GUIDE.md).
PEXEC_PLUGIN_CFLAGS   := -std=c11 -fPIC -fvisibility=hidden -I$(PEXEC_SDK)
PEXEC_PLUGIN_CXXFLAGS := -std=c++20 -fPIC -fvisibility=hidden -I$(PEXEC_SDK)
PEXEC_PLUGIN_LDFLAGS  := -shared
PEXEC_PLUGIN_LDLIBS   := -lcjson

%.so: %.c $(PEXEC_SDK)/pexec_plugin.h
	$(CC) $(PEXEC_PLUGIN_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(PEXEC_PLUGIN_LDFLAGS) $(LDFLAGS) \
		-o $@ $< $(LDLIBS) $(PEXEC_PLUGIN_LDLIBS)

%.so: %.cc $(PEXEC_SDK)/pexec_plugin.h
	$(CXX) $(PEXEC_PLUGIN_CXXFLAGS) $(CPPFLAGS) $(CXXFLAGS) $(PEXEC_PLUGIN_LDFLAGS) $(LDFLAGS) \
		-o $@ $< $(LDLIBS) $(PEXEC_PLUGIN_LDLIBS)

%.so: %.cpp $(PEXEC_SDK)/pexec_plugin.h
	$(CXX) $(PEXEC_PLUGIN_CXXFLAGS) $(CPPFLAGS) $(CXXFLAGS) $(PEXEC_PLUGIN_LDFLAGS) $(LDFLAGS) \
		-o $@ $< $(LDLIBS) $(PEXEC_PLUGIN_LDLIBS)
