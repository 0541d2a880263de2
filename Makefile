# zmlx — one Makefile for the library, the CLI, the tests, the fuzzers.
#   make            build build/libzmlx.{a,so} and build/zmlx
#   make demo       install missing Debian packages, build, run the main job
#   make test       install missing Debian packages, build, run every test
#   make fuzz       libFuzzer targets under ASan+UBSan (clang)
#   make bench      CPU benchmarks (GPU ones: bench/gpu.sh on the device machine)
#   make install PREFIX=/usr/local
# Knobs: CC, NVCC (empty = CPU-only build), CUARCH (default 90), DEPS_PREFIX
# (a folder where Debian packages were unpacked with dpkg -x, e.g. on a
# machine without apt), SKIP_DEPS=1 (never call apt-get).

CC      ?= cc
PREFIX  ?= /usr/local
BUILD   ?= build
CUARCH  ?= 90
VERSION := 0.1.0
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)

NVCC ?= $(shell command -v nvcc 2>/dev/null || ( [ -x /usr/local/cuda/bin/nvcc ] && echo /usr/local/cuda/bin/nvcc ))
CUDA_HOME ?= $(patsubst %/bin/nvcc,%,$(NVCC))

DEPS_CFLAGS :=
DEPS_LDFLAGS :=
ifneq ($(DEPS_PREFIX),)
DEPS_CFLAGS  += -I$(DEPS_PREFIX)/usr/include
DEPS_LDFLAGS += -L$(DEPS_PREFIX)/usr/lib/x86_64-linux-gnu -Wl,-rpath,$(abspath $(DEPS_PREFIX))/usr/lib/x86_64-linux-gnu
endif

WARN    := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS  ?= -O2 -g
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE -fPIC $(WARN) $(CFLAGS) -I. -Iinclude -Isrc $(DEPS_CFLAGS) \
             -DZM_VERSION=\"$(VERSION)\" -I$(BUILD)/gen -MMD -MP
LDLIBS  := $(DEPS_LDFLAGS) -lcjson -lpcre2-8 -lm -lpthread -ldl

LIB_C   := $(shell find src -name '*.c' | sort)
LIB_CU  :=
ifneq ($(NVCC),)
LIB_CU  := $(shell find src -name '*.cu' | sort)
ALL_CFLAGS += -DZM_HAVE_CUDA=1 -I$(CUDA_HOME)/include
NVCCFLAGS ?= -O3 -std=c++17 -lineinfo
ALL_NVCCFLAGS = $(NVCCFLAGS) -DZM_HAVE_CUDA=1 -Iinclude -Isrc -Xcompiler -fPIC,-Wall \
             -gencode arch=compute_$(CUARCH),code=sm_$(CUARCH) \
             -gencode arch=compute_$(CUARCH),code=compute_$(CUARCH) -MMD -MP
# cudart is linked statically so binaries start on machines without a driver;
# NVRTC is a shared library of the toolkit; the driver API (libcuda) is
# dlopen'ed at run time (src/core/cuda.c), never linked.
LDLIBS  += -L$(CUDA_HOME)/lib64 -Wl,-rpath,$(CUDA_HOME)/lib64 -lcudart_static -lnvrtc -lrt -lstdc++
endif

LIB_OBJ := $(LIB_C:%.c=$(BUILD)/%.o) $(LIB_CU:%.cu=$(BUILD)/%.cu.o)
CLI_C   := $(sort $(wildcard tools/*.c))
CLI_OBJ := $(CLI_C:%.c=$(BUILD)/%.o)
TEST_C  := $(sort $(wildcard tests/test_*.c))
TEST_BIN:= $(TEST_C:tests/%.c=$(BUILD)/tests/%)
TEST_SUP:= $(filter-out $(TEST_C),$(sort $(wildcard tests/*.c)))
TEST_SUP_OBJ := $(TEST_SUP:%.c=$(BUILD)/%.o)
BENCH_C := $(sort $(wildcard bench/*.c))
BENCH_BIN := $(BENCH_C:bench/%.c=$(BUILD)/bench/%)
ifneq ($(NVCC),)
BENCH_BIN += $(BUILD)/bench/pdl_chain
endif

.PHONY: all lib demo test check fuzz bench install deps clean format FORCE
all: $(BUILD)/libzmlx.a $(BUILD)/libzmlx.so $(BUILD)/zmlx $(TEST_BIN) $(BENCH_BIN)
lib: $(BUILD)/libzmlx.a $(BUILD)/libzmlx.so

# The git commit, in a header rewritten only when it changes, so the files
# that print it (capsules, --version) rebuild exactly when HEAD moves.
$(BUILD)/gen/zm_commit.h: FORCE
	@mkdir -p $(dir $@)
	@echo '#define ZM_GIT_COMMIT "$(GIT_COMMIT)"' > $@.tmp
	@cmp -s $@.tmp $@ || mv $@.tmp $@
	@rm -f $@.tmp
$(BUILD)/src/bench/capsule.o $(BUILD)/tools/zmlx.o $(BUILD)/fuzz/src/bench/capsule.o: $(BUILD)/gen/zm_commit.h
FORCE:

deps:
ifneq ($(SKIP_DEPS),1)
	@sh scripts/deps.sh
endif

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/%.cu.o: %.cu
	@mkdir -p $(dir $@)
	@echo "  NVCC    $<"
	@$(NVCC) $(ALL_NVCCFLAGS) -c $< -o $@

$(BUILD)/libzmlx.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libzmlx.so: $(LIB_OBJ)
	$(CC) -shared -o $@ $^ $(LDLIBS)

$(BUILD)/zmlx: $(CLI_OBJ) $(BUILD)/libzmlx.a
	$(CC) -o $@ $(CLI_OBJ) $(BUILD)/libzmlx.a $(LDLIBS)

$(BUILD)/tests/%: $(BUILD)/tests/%.o $(TEST_SUP_OBJ) $(BUILD)/libzmlx.a
	$(CC) -o $@ $< $(TEST_SUP_OBJ) $(BUILD)/libzmlx.a $(LDLIBS)

$(BUILD)/bench/pdl_chain: bench/pdl_chain.cu
	@mkdir -p $(dir $@)
	@echo "  NVCC    $<"
	@$(NVCC) -O3 -std=c++17 -arch=sm_$(CUARCH) -o $@ $<

$(BUILD)/bench/%: $(BUILD)/bench/%.o $(BUILD)/libzmlx.a
	$(CC) -o $@ $< $(BUILD)/libzmlx.a $(LDLIBS)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all
	@sh tests/run.sh $(BUILD)

check: test

# libFuzzer + ASan + UBSan, CPU-only objects built apart from the main build.
FUZZ_BUILD := $(BUILD)/fuzz
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer-no-link,address,undefined \
               -fno-sanitize-recover=undefined -I. -Iinclude -Isrc $(DEPS_CFLAGS) \
               -DZM_VERSION=\"$(VERSION)\" -I$(BUILD)/gen
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJ := $(LIB_C:%.c=$(FUZZ_BUILD)/%.o)
$(FUZZ_BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -c $< -o $@
$(FUZZ_BUILD)/fuzz_%: fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer $< $(FUZZ_LIB_OBJ) -o $@ $(DEPS_LDFLAGS) -lcjson -lpcre2-8 -lm -lpthread -ldl
fuzz: deps
	@sh scripts/deps.sh fuzz
	@$(MAKE) --no-print-directory $(FUZZ_BIN)
	@sh fuzz/run.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

bench: all
	@sh bench/cpu.sh $(BUILD)

install: $(BUILD)/libzmlx.a $(BUILD)/libzmlx.so $(BUILD)/zmlx
	install -d $(DESTDIR)$(PREFIX)/include/zmlx $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/bin
	install -m 644 include/zmlx/*.h $(DESTDIR)$(PREFIX)/include/zmlx/
	install -m 644 $(BUILD)/libzmlx.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/libzmlx.so $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(BUILD)/zmlx $(DESTDIR)$(PREFIX)/bin/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@LIBS@|$(LDLIBS)|' zmlx.pc.in \
	    > $(DESTDIR)$(PREFIX)/lib/pkgconfig/zmlx.pc

format:
	clang-format -i $(LIB_C) $(CLI_C) $(TEST_C) $(wildcard include/zmlx/*.h)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
.SECONDARY:
