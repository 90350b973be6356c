# libFuzzer target of the report normalizer (fuzz/fuzz_normalize.c): joins the
# targets of mk/check.mk, so `make fuzz` and `make check-all` run it too.
# mk/check.mk is read first (the Makefile includes mk/*.mk in name order).

FUZZ_TARGETS += fuzz_normalize
FUZZ_NORMALIZE_SRC = src/normalize.c src/normalize_date.c src/normalize_number.c

$(FUZZ_DIR)/fuzz_normalize: fuzz/fuzz_normalize.c $(FUZZ_NORMALIZE_SRC) fuzz/fuzz_common.h $(HDRS) mk/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) fuzz/fuzz_normalize.c $(FUZZ_NORMALIZE_SRC) -o $@ $(LUA54_LIB) -lm
