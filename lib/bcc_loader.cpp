// SPDX-License-Identifier: Apache-2.0
#include "bcc_loader.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <string>

// Set by lib/CMakeLists.txt.
#ifndef QOCNET_BCC_MODULE_BUILD_PATH
#error "QOCNET_BCC_MODULE_BUILD_PATH must be defined (the build tree's libqocnet-bcc.so)"
#endif
#ifndef QOCNET_BCC_MODULE_INSTALL_PATH
#error "QOCNET_BCC_MODULE_INSTALL_PATH must be defined (<libdir>/qocnet/libqocnet-bcc.so)"
#endif

namespace qocnet::detail {

namespace fs = std::filesystem;

std::vector<fs::path> bcc_module_candidates(const char* env_value) {
  if (env_value && *env_value) return {fs::path(env_value)};
  std::vector<fs::path> out;
  // The module installed beside the shared libqocnet that runs
  // (<libdir>/qocnet/), wherever it was installed: a relocated prefix, or a
  // package, uses its own module and not a build tree's.
  static const char anchor = 0;
  Dl_info info{};
  if (::dladdr(&anchor, &info) != 0 && info.dli_fname) {
    const fs::path lib(info.dli_fname);
    std::error_code ec;
    const fs::path beside = lib.parent_path() / "qocnet" / kBccModuleName;
    if (lib.filename().string().starts_with("libqocnet.so") && fs::exists(beside, ec)) out.push_back(beside);
  }
  out.emplace_back(QOCNET_BCC_MODULE_BUILD_PATH);
  out.emplace_back(QOCNET_BCC_MODULE_INSTALL_PATH);
  return out;
}

namespace {

struct Attempt {
  const qocnet_bcc_api* api = nullptr;
  bool exists = false;
  std::string why;  // empty when accepted
};

Attempt try_open(const fs::path& path) {
  Attempt a;
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    a.why = "no such file";
    return a;
  }
  a.exists = true;
  ::dlerror();
  void* h = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char* e = ::dlerror();
    a.why = std::string("cannot be loaded: ") + (e ? e : "dlopen failed");
    return a;
  }
  auto entry = reinterpret_cast<qocnet_bcc_module_fn>(::dlsym(h, QOCNET_BCC_ENTRY));
  if (!entry) {
    ::dlclose(h);
    a.why = "not a qocnet compiler module (it exports no " QOCNET_BCC_ENTRY ")";
    return a;
  }
  std::uint32_t version = 0;
  const qocnet_bcc_api* api = entry(QOCNET_BCC_ABI_VERSION, &version);
  if (version != QOCNET_BCC_ABI_VERSION || !api) {
    ::dlclose(h);
    a.why = "speaks compiler-module ABI version " + std::to_string(version) +
            ", this libqocnet speaks version " + std::to_string(QOCNET_BCC_ABI_VERSION) +
            " (the module and libqocnet come from different qocnet builds)";
    return a;
  }
  if (api->abi_version != QOCNET_BCC_ABI_VERSION || api->size < sizeof(qocnet_bcc_api)) {
    ::dlclose(h);
    a.why = "its function table is malformed (version " + std::to_string(api->abi_version) +
            ", " + std::to_string(api->size) + " of " + std::to_string(sizeof(qocnet_bcc_api)) +
            " bytes)";
    return a;
  }
  // Accepted: stays loaded for the life of the process (LLVM's static
  // destructors are not meant to run at dlclose).
  a.api = api;
  return a;
}

}  // namespace

Result<const qocnet_bcc_api*> open_bcc_module(const std::vector<fs::path>& candidates,
                                              bool from_env) {
  std::string tried;
  bool any_exists = false, missing_libbcc = false;
  for (const auto& p : candidates) {
    Attempt a = try_open(p);
    if (a.api) return a.api;
    any_exists = any_exists || a.exists;
    missing_libbcc = missing_libbcc || a.why.find("libbcc") != std::string::npos;
    tried += "\n  " + p.string() + ": " + a.why;
  }
  std::string fix;
  if (from_env)
    fix = "point QOCNET_BCC_MODULE at the libqocnet-bcc.so of this qocnet build, or unset it to "
          "use " QOCNET_BCC_MODULE_BUILD_PATH " or else " QOCNET_BCC_MODULE_INSTALL_PATH;
  else
    fix = "build the module with this libqocnet (cmake --build <build dir> --target qocnet_bcc), "
          "or install qocnet (cmake --install <build dir> puts it at " QOCNET_BCC_MODULE_INSTALL_PATH
          "), or set QOCNET_BCC_MODULE to the libqocnet-bcc.so of this qocnet build";
  if (missing_libbcc)
    fix += "; the module needs libbcc and LLVM: install libbpfcc (scripts/bootstrap does)";
  return make_error(any_exists ? Errc::failed_precondition : Errc::unavailable,
                    "compiling the BPF datapath needs qocnet's compiler module (" +
                        std::string(kBccModuleName) + ", which links libbcc), and none was usable; tried:" +
                        tried,
                    fix);
}

Result<const qocnet_bcc_api*> bcc_module() {
  static std::mutex m;
  static const qocnet_bcc_api* api = nullptr;
  std::lock_guard<std::mutex> lock(m);
  if (api) return api;
  const char* env = std::getenv("QOCNET_BCC_MODULE");
  QOCNET_ASSIGN(opened, open_bcc_module(bcc_module_candidates(env), env && *env));
  api = opened;
  return api;
}

}  // namespace qocnet::detail
