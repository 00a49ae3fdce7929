// SPDX-License-Identifier: Apache-2.0
/* Stand-ins for libqocnet-bcc.so that libqocnet must refuse (test/unit/
 * bcc_module_test.cpp): built once as a module of another ABI version
 * (QOCNET_STUB_ABI_VERSION) and once without the entry point
 * (QOCNET_STUB_NO_ENTRY). Neither links libbcc. */
#include <stddef.h>
#include <stdint.h>

#include "bcc_module.h"

#ifdef QOCNET_STUB_NO_ENTRY
__attribute__((visibility("default"))) int qocnet_bcc_stub_without_entry(void) { return 0; }
#else
static const qocnet_bcc_api stub_api = {QOCNET_STUB_ABI_VERSION, sizeof(qocnet_bcc_api), "stub", 0, 0, 0,
                                        0, 0, 0, 0, 0};

__attribute__((visibility("default"))) const qocnet_bcc_api* qocnet_bcc_module(uint32_t abi_version,
                                                                             uint32_t* module_version) {
  if (module_version) *module_version = QOCNET_STUB_ABI_VERSION;
  return abi_version == QOCNET_STUB_ABI_VERSION ? &stub_api : NULL;
}
#endif
