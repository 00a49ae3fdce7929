// SPDX-License-Identifier: Apache-2.0
// libqocnet-bcc.so: the only code of qocnet that calls libbcc (and through it
// LLVM and Clang). libqocnet dlopen()s it on the first compile; see
// bcc_module.h for the ABI and lib/bcc_loader.cpp for the lookup.
//
// Self-contained on purpose: it uses libbcc, libc and libstdc++ only, never
// libqocnet's own code, so one copy of qocnet's objects lives in the process.
#include "bcc_module.h"

#include <bcc/bcc_version.h>
#include <bcc/bpf_module.h>

#include <cstdio>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <type_traits>

struct qocnet_bcc_object {
  std::unique_ptr<ebpf::BPFModule> mod;
};

namespace {

void describe(char* err, size_t size, const char* what) {
  if (err && size) std::snprintf(err, size, "%s", what);
}

int compile(const char* text, const char* const* cflags, int ncflags, qocnet_bcc_object** out,
            char* err, size_t err_size) {
  if (out) *out = nullptr;
  if (!text || !out || ncflags < 0 || (ncflags > 0 && !cflags)) {
    describe(err, err_size, "qocnet_bcc compile: invalid arguments");
    return -1;
  }
  try {
    auto obj = std::make_unique<qocnet_bcc_object>();
    // rw engine off: qocnet reads maps with its own typed views, and the
    // engine's JIT'd readers/writers only cost memory.
    obj->mod = std::make_unique<ebpf::BPFModule>(0, nullptr, false, "", true);
    // load_string takes `const char*[]`; it does not write through it.
    int rc = obj->mod->load_string(text, const_cast<const char**>(cflags), ncflags);
    if (rc != 0) return rc;
    *out = obj.release();
    return 0;
  } catch (const std::bad_alloc&) {
    describe(err, err_size, "libbcc ran out of memory");
  } catch (const std::exception& e) {
    describe(err, err_size, e.what());
  } catch (...) {
    describe(err, err_size, "libbcc threw an unknown exception");
  }
  return -1;
}

void destroy(qocnet_bcc_object* obj) { delete obj; }

size_t num_tables(const qocnet_bcc_object* obj) { return obj->mod->num_tables(); }
const char* table_name(const qocnet_bcc_object* obj, size_t i) { return obj->mod->table_name(i); }
int table_fd(const qocnet_bcc_object* obj, size_t i) { return obj->mod->table_fd(i); }

const void* function_start(const qocnet_bcc_object* obj, const char* name) {
  try {
    return obj->mod->function_start(std::string(name));
  } catch (...) {
    return nullptr;
  }
}
size_t function_size(const qocnet_bcc_object* obj, const char* name) {
  try {
    return obj->mod->function_size(std::string(name));
  } catch (...) {
    return 0;
  }
}
const char* license(const qocnet_bcc_object* obj) { return obj->mod->license(); }

const qocnet_bcc_api kApi = {
    QOCNET_BCC_ABI_VERSION,
    sizeof(qocnet_bcc_api),
    "libbcc " LIBBCC_VERSION,
    compile,
    destroy,
    num_tables,
    table_name,
    table_fd,
    function_start,
    function_size,
    license,
};

}  // namespace

extern "C" __attribute__((visibility("default"))) const qocnet_bcc_api* qocnet_bcc_module(
    uint32_t abi_version, uint32_t* module_version) {
  if (module_version) *module_version = QOCNET_BCC_ABI_VERSION;
  return abi_version == QOCNET_BCC_ABI_VERSION ? &kApi : nullptr;
}
static_assert(std::is_same_v<decltype(&qocnet_bcc_module), qocnet_bcc_module_fn>,
              "the entry point must have the type bcc_module.h declares");
