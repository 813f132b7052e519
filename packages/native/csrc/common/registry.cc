#include "common/registry.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

namespace rlhf {

static std::vector<std::pair<std::string, ExportFn>>& registry() {
  static std::vector<std::pair<std::string, ExportFn>> r;  // constructed on first use, before any registrar runs
  return r;
}

OpRegistrar::OpRegistrar(const char* name, ExportFn fn) { registry().emplace_back(name, fn); }

void export_all_ops(Napi::Env env, Napi::Object exports) {
  auto ops = registry();
  std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [name, fn] : ops) fn(env, exports);
}

}  // namespace rlhf
