/* zmlx: fused kernels from one line of math, a kernel catalog, and MoE
 * decode from GGUF files, on CUDA and CPU. Umbrella header. */
#ifndef ZMLX_H
#define ZMLX_H
#include "zmlx/core.h"
#include "zmlx/kernel.h"
#include "zmlx/gguf.h"
#include "zmlx/model.h"
#endif
