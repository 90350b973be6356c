# Memory checks of the C core: make asan, make valgrind, make fuzz.
# What they check and the latest results: docs/checks.md.

.PHONY: asan valgrind fuzz fuzz-build fuzz-deps check-all

# ---- AddressSanitizer + UBSan under the whole Lua 5.4 suite -------------
ASAN_CC      ?= gcc
ASAN_SAN      = -fsanitize=address,undefined -fsanitize=float-cast-overflow -fno-omit-frame-pointer
ASAN_CORE     = build/asan/maintenance_report/core.so
ASAN_HIREDIS  = build/asan/maintenance_report/hiredis.so
ASAN_PRELOAD  = build/asan/asan_preload.so
ASAN_RUNTIME  = $(shell $(ASAN_CC) -print-file-name=libasan.so)

$(ASAN_CORE): $(SRC) $(HDRS) Makefile mk/check.mk
	@mkdir -p $(dir $@)
	$(ASAN_CC) -O1 -g $(ASAN_SAN) $(WARN) $(DEFS) -fPIC -shared -I$(LUA54_INC) $(PKG_CFLAGS) $(SRC) -o $@ $(LIBS)

$(ASAN_HIREDIS): src/redis/hiredis.c Makefile mk/check.mk
	@mkdir -p $(dir $@)
	$(ASAN_CC) -O1 -g $(ASAN_SAN) $(WARN) $(DEFS) -fPIC -shared -I$(LUA54_INC) $< -o $@ -lhiredis

# Preloaded after libasan: keeps the runtime out of the specs' child processes
# (nginx, curl, sh, python3) and core.so mapped for leak reports at exit.
$(ASAN_PRELOAD): tools/asan_preload.c mk/check.mk
	@mkdir -p $(dir $@)
	$(ASAN_CC) -O2 $(WARN) $(DEFS) -fPIC -shared $< -o $@

asan: deps $(ASAN_CORE) $(ASAN_HIREDIS) $(ASAN_PRELOAD) $(CORE54) $(PROC54)
	ASAN_RUNTIME='$(ASAN_RUNTIME)' ASAN_PRELOAD='$(ASAN_PRELOAD)' sh tools/run-asan.sh

# ---- valgrind memcheck over the core specs --------------------------------
VALGRIND_SPECS ?= spec/core_sign_spec.lua spec/core_http_spec.lua spec/scheduler_spec.lua spec/client_spec.lua \
                  spec/normalize_spec.lua spec/normalize_edge_spec.lua spec/normalize_semantics_spec.lua \
                  spec/core_transport_facts_spec.lua spec/core_os_spec.lua spec/ledger_redis_spec.lua

valgrind: deps $(CORE54) $(PROC54) $(REDIS54)
	sh tools/run-valgrind.sh $(VALGRIND_SPECS)

# ---- libFuzzer targets ------------------------------------------------------
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_TARGETS  = fuzz_sign fuzz_headers fuzz_json fuzz_normalize
FUZZ_DIR      = build/fuzz
FUZZ_CFLAGS   = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
                -fno-omit-frame-pointer $(WARN) $(DEFS) -Isrc -I$(LUA54_INC) $(PKG_CFLAGS)
LUA54_LIB    ?= -llua5.4

$(FUZZ_DIR)/fuzz_sign: fuzz/fuzz_sign.c src/sign.c src/buf.c fuzz/fuzz_common.h $(HDRS) mk/check.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) fuzz/fuzz_sign.c src/sign.c src/buf.c -o $@ $(LUA54_LIB) $(LIBS)

# fuzz_headers.c includes src/transfer.c, to reach its static set_header.
$(FUZZ_DIR)/fuzz_headers: fuzz/fuzz_headers.c src/transfer.c src/sign.c src/buf.c src/signals.c fuzz/fuzz_common.h $(HDRS) mk/check.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) fuzz/fuzz_headers.c src/sign.c src/buf.c src/signals.c -o $@ $(LUA54_LIB) $(LIBS)

# json.c registers the writer too (src/json_encode.c).
$(FUZZ_DIR)/fuzz_json: fuzz/fuzz_json.c src/json.c src/json_encode.c src/buf.c fuzz/fuzz_common.h $(HDRS) mk/check.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) fuzz/fuzz_json.c src/json.c src/json_encode.c src/buf.c -o $@ $(LUA54_LIB) $(LIBS)

# normalize.c registers the analysis' keyword search too (src/analysis_search.c).
FUZZ_NORMALIZE_SRC = src/normalize.c src/normalize_date.c src/normalize_number.c src/analysis_search.c

$(FUZZ_DIR)/fuzz_normalize: fuzz/fuzz_normalize.c $(FUZZ_NORMALIZE_SRC) fuzz/fuzz_common.h $(HDRS) mk/check.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) fuzz/fuzz_normalize.c $(FUZZ_NORMALIZE_SRC) -o $@ $(LUA54_LIB) -lm

# clang and its fuzzer runtime are only needed here, not by the build or the tests.
fuzz-deps:
	@sh tools/deps.sh clang libclang-rt-14-dev

fuzz-build: fuzz-deps
	@$(MAKE) --no-print-directory $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))

# Each target runs FUZZ_SECONDS; new inputs go to build/fuzz/corpus, never to fuzz/corpus.
fuzz: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	    mkdir -p $(FUZZ_DIR)/corpus/$$t $(FUZZ_DIR)/artifacts; \
	    echo "== $$t for $(FUZZ_SECONDS)s"; \
	    $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
	        -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t- \
	        $(FUZZ_DIR)/corpus/$$t fuzz/corpus/$$t >$(FUZZ_DIR)/$$t.log 2>&1; \
	    rc=$$?; \
	    grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|stat::peak_rss_mb)|Done [0-9]+ runs' $(FUZZ_DIR)/$$t.log; \
	    if [ $$rc -ne 0 ]; then tail -n 60 $(FUZZ_DIR)/$$t.log; echo "$$t: FAILED (exit $$rc), log $(FUZZ_DIR)/$$t.log"; exit 1; fi; \
	    echo "$$t: clean"; \
	done

# Everything: the suite, the sanitizers, valgrind and a short fuzz run.
check-all: test asan valgrind
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)
