# Benchmarks (issue 6): `make bench` builds, then runs bench/run.sh (a few
# minutes); `make bench-profile` writes the profiles behind BENCHMARKS.md to
# bench/results/. Figures and exact commands: BENCHMARKS.md.

.PHONY: bench bench-profile

# A Lua 5.4 interpreter linked with the static liblua5.4.a, whose symbol table
# names the VM's internal functions in callgrind (the packaged lua5.4 is stripped).
BENCH_LUA54_PROF = build/bench/lua54-prof
LUA54_STATIC    ?= $(shell pkg-config --variable=libdir lua5.4 2>/dev/null || echo /usr/lib/x86_64-linux-gnu)/liblua5.4.a

bench: build
	sh bench/run.sh

$(BENCH_LUA54_PROF): bench/prof/lua54.c mk/bench.mk
	@mkdir -p $(dir $@)
	$(CC) -O2 -g $(WARN) -I$(LUA54_INC) $< -o $@ -Wl,-E $(LUA54_STATIC) -lm -ldl

bench-profile: build $(BENCH_LUA54_PROF)
	sh bench/profile.sh
