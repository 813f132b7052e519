// Op registration: every <op>_binding.cc registers a function that adds its exports to the module object,
// so that adding an op never means editing a central file. Registration runs from static initialisers
// (all objects are linked straight into the addon, nothing is dropped by the linker).
#pragma once
#include <napi.h>

namespace rlhf {

using ExportFn = void (*)(Napi::Env env, Napi::Object exports);

struct OpRegistrar {
  OpRegistrar(const char* name, ExportFn fn);
};

// Calls every registered ExportFn, in name order so that the module's shape is deterministic.
void export_all_ops(Napi::Env env, Napi::Object exports);

}  // namespace rlhf

#define RLHF_REGISTER_OP(ID, FN) static ::rlhf::OpRegistrar rlhf_op_registrar_##ID(#ID, FN)
