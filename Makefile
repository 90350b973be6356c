# maintenance-report: build, test and demo. `make help` lists the targets.

CC      ?= cc
CFLAGS  ?= -O2 -g
WARN     = -std=c99 -Wall -Wextra -Werror -pedantic -Wshadow -Wstrict-prototypes
DEFS     = -D_POSIX_C_SOURCE=200809L
PKGS     = libcurl libcrypto zlib
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lcurl -lcrypto -lz)
LIBS     = $(PKG_LIBS) -lpthread

LUA54_INC  ?= /usr/include/lua5.4
LUAJIT_INC ?= /usr/include/luajit-2.1

# Every C file directly under src/ is part of the core (the rockspec lists the same).
SRC  = $(sort $(wildcard src/*.c))
HDRS = $(wildcard src/*.h)

CORE54  = build/lua5.4/maintenance_report/core.so
COREJIT = build/luajit/maintenance_report/core.so
# The sandbox rock's own C module (exec for its foreground mode), not part of the core.
PROC54  = build/lua5.4/maintenance_report_sandbox/process.so
PROCJIT = build/luajit/maintenance_report_sandbox/process.so
# The blocking Redis client of the Redis ledger store (hiredis), its own module
# so that the core needs no hiredis.
REDIS54  = build/lua5.4/maintenance_report/hiredis.so
REDISJIT = build/luajit/maintenance_report/hiredis.so

# Debian packages the build, the tests, the sandbox and the benchmarks need.
DEB_PACKAGES = gcc make pkg-config libcurl4-openssl-dev libssl-dev zlib1g-dev openssl curl ca-certificates \
  lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev lua-cjson lua-busted lua-argparse lua-check \
  lua-term lua-luaossl luarocks nginx libnginx-mod-http-lua lua-resty-core python3 wrk valgrind \
  libhiredis-dev redis-server lua-nginx-redis prometheus

export LUA_PATH  := $(CURDIR)/lua/?.lua;$(CURDIR)/lua/?/init.lua;$(CURDIR)/spec/?.lua;;

.PHONY: all build deps lint spec test clean help

all: build

build: $(CORE54) $(COREJIT) $(PROC54) $(PROCJIT) $(REDIS54) $(REDISJIT)

$(CORE54): $(SRC) $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -shared -I$(LUA54_INC) $(PKG_CFLAGS) $(SRC) -o $@ $(LIBS)

$(COREJIT): $(SRC) $(HDRS) Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -shared -I$(LUAJIT_INC) $(PKG_CFLAGS) $(SRC) -o $@ $(LIBS)

$(PROC54): src/sandbox/process.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -shared -I$(LUA54_INC) $< -o $@

$(PROCJIT): src/sandbox/process.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -shared -I$(LUAJIT_INC) $< -o $@

$(REDIS54): src/redis/hiredis.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -shared -I$(LUA54_INC) $< -o $@ -lhiredis

$(REDISJIT): src/redis/hiredis.c Makefile
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(WARN) $(DEFS) -fPIC -shared -I$(LUAJIT_INC) $< -o $@ -lhiredis

deps:
	@sh tools/deps.sh $(DEB_PACKAGES)

lint:
	luacheck --quiet lua bin spec bench examples

spec: build
	@sh tools/run-specs.sh

test: deps build lint spec

clean:
	rm -rf build

# Checks beyond the test suite (sanitizers, fuzzing, benchmarks) live in mk/.
-include mk/*.mk

help:
	@echo "make          build the C core for Lua 5.4 and LuaJIT"
	@echo "make deps     install missing Debian packages"
	@echo "make test     deps, build, luacheck, busted under lua5.4 and luajit"
	@echo "make demo     build, start the sandbox, run a query and a small batch end to end"
	@echo "make asan     the Lua 5.4 suite with the core built with ASan + UBSan"
	@echo "make valgrind the core specs under valgrind memcheck"
	@echo "make fuzz     libFuzzer targets, FUZZ_SECONDS each (default 60)"
	@echo "make bench    benchmarks against curl and cjson (see BENCHMARKS.md)"
	@echo "make check-all  test, asan, valgrind and fuzz"
