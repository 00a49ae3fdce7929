// SPDX-License-Identifier: Apache-2.0
/* The C ABI between libqocnet and its compiler module, libqocnet-bcc.so.
 *
 * libbcc brings LLVM and Clang (~76 MiB mapped, ~0.15 s to load), which a
 * process needs only to compile the datapath. So libqocnet does not link
 * libbcc: the module does, and libqocnet dlopen()s it on the first compile
 * (lib/bcc_loader.cpp; docs/ARCHITECTURE.md, "The compiler module"). A
 * process that never compiles (qocnetctl, a warm restart of qocnetd that
 * re-adopts pinned programs) never maps libbcc.
 *
 * The module only compiles: it hands back the maps libbcc created and the
 * programs' instructions. Loading the programs (libbpf's bpf_prog_load, the
 * verifier log, pinned-map reuse) stays in libqocnet.
 *
 * The ABI is versioned. Any change to this file's types or to the meaning of
 * a function bumps QOCNET_BCC_ABI_VERSION; libqocnet refuses a module that
 * speaks another version (its error names the module and both versions).
 */
#ifndef QOCNET_BCC_MODULE_H
#define QOCNET_BCC_MODULE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define QOCNET_BCC_ABI_VERSION 1u
/* The module's one exported symbol (see qocnet_bcc_module_fn). */
#define QOCNET_BCC_ENTRY "qocnet_bcc_module"

/* One compiled translation unit: libbcc's module with its maps created. */
typedef struct qocnet_bcc_object qocnet_bcc_object;

typedef struct qocnet_bcc_api {
  uint32_t abi_version; /* QOCNET_BCC_ABI_VERSION of the module's build */
  uint32_t size;        /* sizeof(qocnet_bcc_api) in the module's build */
  const char* libbcc;   /* what the module was built against, e.g. "libbcc 0.26.0" */

  /* Compiles `text` (one C translation unit) with `cflags` and creates its
   * maps. Returns 0 and sets *out, or returns nonzero with *out NULL; Clang's
   * diagnostics go to stderr (libqocnet captures fd 2 around the call), and
   * an exception inside libbcc is described in `err` (NUL-terminated,
   * truncated to err_size). Not thread-safe: one compile at a time. */
  int (*compile)(const char* text, const char* const* cflags, int ncflags, qocnet_bcc_object** out,
                 char* err, size_t err_size);
  /* Frees the object and libbcc's LLVM memory; closes libbcc's map fds
   * (dup them first to keep a map). NULL is allowed. */
  void (*destroy)(qocnet_bcc_object* obj);

  size_t (*num_tables)(const qocnet_bcc_object* obj);
  const char* (*table_name)(const qocnet_bcc_object* obj, size_t i);
  int (*table_fd)(const qocnet_bcc_object* obj, size_t i);

  /* A function's instructions (struct bpf_insn[]); NULL / 0 if the object
   * has no such function. Valid until destroy. */
  const void* (*function_start)(const qocnet_bcc_object* obj, const char* name);
  size_t (*function_size)(const qocnet_bcc_object* obj, const char* name);
  const char* (*license)(const qocnet_bcc_object* obj);
} qocnet_bcc_api;

/* Returns the module's table if it speaks `abi_version`, else NULL; either
 * way *module_version is set to the version it speaks. */
typedef const qocnet_bcc_api* (*qocnet_bcc_module_fn)(uint32_t abi_version, uint32_t* module_version);

#ifdef __cplusplus
}
#endif

#endif /* QOCNET_BCC_MODULE_H */
