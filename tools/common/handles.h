// Owning handles over the C API's objects (include/lamina/lamina.h): a
// std::unique_ptr per handle type whose deleter is the matching *_free, so a
// tool frees each model, context, sampler and detokenizer exactly once on
// every path. Free order still matters (a context before its model): declare
// the model first.
#pragma once

#include <memory>

#include "lamina/lamina.h"

namespace lamina::tools {

template <typename T, void (*Free)(T*)>
struct FreeWith {
  void operator()(T* p) const { Free(p); }
};

using ModelPtr = std::unique_ptr<lamina_model, FreeWith<lamina_model, lamina_model_free>>;
using ContextPtr = std::unique_ptr<lamina_context, FreeWith<lamina_context, lamina_context_free>>;
using SamplerPtr = std::unique_ptr<lamina_sampler, FreeWith<lamina_sampler, lamina_sampler_free>>;
using DetokenizerPtr =
    std::unique_ptr<lamina_detokenizer, FreeWith<lamina_detokenizer, lamina_detokenizer_free>>;

}  // namespace lamina::tools
