# casebus — one plain Makefile.
#
#   make            build everything into build/ (binaries in build/bin/)
#   make test       install missing packages, build, run every unit and end-to-end test
#   make check      the same tests built with AddressSanitizer + UBSan (build/san/)
#   make test-dates the whole suite with the clock moved (libfaketime) to a year
#                   boundary, a year with no calendar, a Saturday, an adjusted
#                   working Saturday and a public holiday (DATES="…" for others)
#   make test-loaded the whole suite LOADED_RUNS times (5) with stress-ng --cpu 2
#   make run        start the whole system on the sample county (var/, 127.0.0.1:8080)
#   make bench      the benchmarks, each printing its figures beside its baseline
#   make fuzz       each libFuzzer target for FUZZ_SECONDS (clang)
#   make deps       install missing Debian packages (deploy/packages.txt); the
#                   test targets also install package-lock.json's npm packages
#   make clean      remove build/
#
# Every public target runs `deps` first and then builds in a sub-make, so that
# pkg-config is asked only once the packages are there.

BUILD    ?= build
V        ?= 0
ifeq ($(V),0)
Q := @
else
Q :=
endif
SAN      ?=
CC       ?= cc
FUZZ_SECONDS ?= 30

PKGS := libzmq libprotobuf-c lmdb libuv libsodium inih jansson libcurl libh2o openssl libzstd

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wformat=2 -Werror -Wno-format-truncation
OPT  := -O2 -g
ifeq ($(SAN),1)
OPT  := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
LDSAN := -fsanitize=address,undefined
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CPPFLAGS := -D_GNU_SOURCE -Icommon -Itests/lib -I$(BUILD)/gen -Iservices
CFLAGS   := -std=c11 $(OPT) $(WARN) -MMD -MP
GENFLAGS := -std=c11 $(OPT) -w
LDLIBS   = $(PKG_LIBS) -lm

PROTOS   := $(wildcard proto/casebus/v1/*.proto)
GEN_C    := $(PROTOS:proto/%.proto=$(BUILD)/gen/%.pb-c.c)
GEN_H    := $(GEN_C:.c=.h)
GEN_O    := $(GEN_C:$(BUILD)/gen/%.c=$(BUILD)/obj/gen/%.o)

COMMON_C := $(wildcard common/*.c)
COMMON_O := $(COMMON_C:%.c=$(BUILD)/obj/%.o)
LIB      := $(BUILD)/lib/libcasebus.a

# services/<name>/*.c -> build/bin/casebus-<name>; services/cli -> build/bin/casebus
# A service is built once it has a main.c (a daemon's other files may come first).
SERVICES := $(notdir $(patsubst %/main.c,%,$(wildcard services/*/main.c)))
BINS     := $(foreach s,$(SERVICES),$(BUILD)/bin/$(if $(filter cli,$(s)),casebus,casebus-$(s)))

UNIT_C   := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(UNIT_C:tests/unit/%.c=$(BUILD)/tests/%)
TLIB_C   := $(wildcard tests/lib/*.c)
TLIB_O   := $(TLIB_C:%.c=$(BUILD)/obj/%.o)
HELP_C   := $(wildcard tests/e2e/*.c)
HELP_BIN := $(HELP_C:tests/e2e/%.c=$(BUILD)/tests/%)
SHIM_C   := $(wildcard tests/shim/*.c)
SHIM_SO  := $(SHIM_C:tests/shim/%.c=$(BUILD)/tests/%.so)
BENCH_C  := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_C:bench/%.c=$(BUILD)/bench/%)
FUZZ_C   := $(wildcard tests/fuzz/fuzz_*.c)

.PHONY: all deps build test test-dates test-loaded check bench fuzz clean fuzz-run run
.SECONDARY:
.DEFAULT_GOAL := all

all: deps
	@$(MAKE) --no-print-directory build

deps:
	@sh deploy/deps.sh

build: $(LIB) $(BINS) $(UNIT_BIN) $(HELP_BIN) $(SHIM_SO) $(BENCH_BIN)

test: deps
	@$(MAKE) --no-print-directory build
	@sh deploy/npm.sh
	@sh tests/run.sh $(BUILD)

test-dates: deps
	@$(MAKE) --no-print-directory build
	@sh deploy/npm.sh
	@sh tests/dates.sh $(BUILD) $(if $(DATES),$(DATES),all)

LOADED_RUNS ?= 5
test-loaded: deps
	@$(MAKE) --no-print-directory build
	@sh deploy/npm.sh
	@sh tests/loaded.sh $(LOADED_RUNS) sh tests/run.sh $(BUILD)

check: deps
	@$(MAKE) --no-print-directory BUILD=build/san SAN=1 build
	@sh deploy/npm.sh
	@ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		sh tests/run.sh build/san

run: deps
	@$(MAKE) --no-print-directory build
	@if [ -x $(BUILD)/bin/casebus-intake ] && [ -x $(BUILD)/bin/casebus-router ] && \
	    [ -x $(BUILD)/bin/casebus-deadline ] && [ -x $(BUILD)/bin/casebus-notify ]; then \
		bash deploy/run.sh $(BUILD); \
	else \
		echo "make run: the daemons are not all built yet (see README, Status)"; exit 1; \
	fi

bench: deps
	@sh deploy/deps.sh deploy/packages.txt deploy/packages-bench.txt
	@$(MAKE) --no-print-directory build
	@sh bench/run.sh $(BUILD)

fuzz: deps
	@sh deploy/deps.sh deploy/packages.txt deploy/packages-fuzz.txt
	@$(MAKE) --no-print-directory BUILD=build/fuzz CC=clang fuzz-run

clean:
	rm -rf build

# ---- generated protobuf-c code (never committed) ----
$(BUILD)/gen/%.pb-c.c $(BUILD)/gen/%.pb-c.h: proto/%.proto
	@mkdir -p $(BUILD)/gen
	@echo "  PROTO $<"
	$(Q)protoc-c --c_out=$(BUILD)/gen -Iproto $<

$(BUILD)/obj/gen/%.o: $(BUILD)/gen/%.c $(GEN_H)
	@mkdir -p $(dir $@)
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(GENFLAGS) -c -o $@ $<

# ---- our code ----
$(BUILD)/obj/%.o: %.c | $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  CC    $<"
	$(Q)$(CC) $(CPPFLAGS) $(PKG_CFLAGS) $(CFLAGS) -c -o $@ $<

$(LIB): $(COMMON_O) $(GEN_O)
	@mkdir -p $(dir $@)
	$(Q)rm -f $@ && ar rcs $@ $^

define service_rule
$(BUILD)/bin/$(if $(filter cli,$(1)),casebus,casebus-$(1)): $(patsubst %.c,$(BUILD)/obj/%.o,$(wildcard services/$(1)/*.c)) $(LIB)
	@mkdir -p $$(dir $$@)
	@echo "  LD    $$@"
	$(Q)$$(CC) $(LDSAN) -o $$@ $$^ $$(LDLIBS)
endef
$(foreach s,$(SERVICES),$(eval $(call service_rule,$(s))))

# Unit tests may include a daemon's own files (its handlers and state), so they
# link the objects of services/*/ except each daemon's main.c.
SVC_O := $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out %/main.c,$(wildcard services/*/*.c)))

$(BUILD)/tests/test_%: $(BUILD)/obj/tests/unit/test_%.o $(TLIB_O) $(SVC_O) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS) -lcmocka

$(BUILD)/tests/%: $(BUILD)/obj/tests/e2e/%.o $(TLIB_O) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS)

# Libraries a test preloads into a daemon: never sanitized (they wrap libc
# calls the sanitizer's runtime makes too), and without libcasebus.
$(BUILD)/tests/%.so: tests/shim/%.c
	@mkdir -p $(dir $@)
	@echo "  CC    $@"
	$(Q)$(CC) -std=c11 -O2 -g $(WARN) -U_FORTIFY_SOURCE -fPIC -shared -o $@ $< -ldl -lpthread

$(BUILD)/bench/%: $(BUILD)/obj/bench/%.o $(TLIB_O) $(LIB)
	@mkdir -p $(dir $@)
	@echo "  LD    $@"
	$(Q)$(CC) $(LDSAN) -o $@ $^ $(LDLIBS) -lpthread

# ---- fuzzing (clang's libFuzzer) ----
FUZZ_BIN := $(FUZZ_C:tests/fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_FLAGS := -fsanitize=fuzzer,address,undefined -g -O1

FUZZ_HELP := $(filter-out tests/fuzz/fuzz_%.c,$(wildcard tests/fuzz/*.c))

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_HELP) $(COMMON_C) $(GEN_C) $(TLIB_C) $(filter-out %/main.c,$(wildcard services/*/*.c))
	@mkdir -p $(dir $@)
	@echo "  FUZZ  $@"
	$(Q)$(CC) $(CPPFLAGS) -Iservices/intake -Iservices/router -Itests/fuzz $(PKG_CFLAGS) -std=c11 $(FUZZ_FLAGS) -w -o $@ $^ $(LDLIBS)

# Each target starts from its corpus (kept in $(BUILD)/corpus) and its seeds
# (tests/fuzz/seeds/NAME); the last line is libFuzzer's count of edges covered.
fuzz-run: $(FUZZ_BIN)
	@for f in $(FUZZ_BIN); do \
		name=$$(basename $$f); mkdir -p $(BUILD)/corpus/$$name; \
		seeds=tests/fuzz/seeds/$$name; [ -d $$seeds ] || seeds=; \
		echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
		$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/corpus/$$name $$seeds \
			2>$(BUILD)/fuzz/$$name.log || { tail -40 $(BUILD)/fuzz/$$name.log; exit 1; }; \
		grep -E 'stat::number_of_executed_units' $(BUILD)/fuzz/$$name.log; \
		grep -oE 'cov: [0-9]+ ft: [0-9]+' $(BUILD)/fuzz/$$name.log | tail -1 | sed "s/^/  $$name: /"; \
	done

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
