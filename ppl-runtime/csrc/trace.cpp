// Graph capture for ppl's compiled potentials (`ppl::jit`).
//
// libtorch's tracer records every aten op run between `ppl_trace_begin` and `ppl_trace_end`; the
// recorded graph is written out as plain text, one node per line, for the Rust side to compile
// into a host program (see `ppl-runtime/src/jit/`). Format, one record per line:
//
//   I <value>                              a graph input, in order
//   C <value> i <int>                      an integer constant
//   C <value> f <double>                   a float constant (printed with 17 digits)
//   C <value> b <0|1>                      a bool constant
//   C <value> n                            None
//   C <value> l <len> <int>...             an int list constant
//   C <value> t <ndim> <dim>... <v>...     a tensor constant (values as doubles)
//   C <value> s                            anything else (devices, dtypes as strings, ...)
//   N <kind> <nin> <in>... <nout> <out>... an op
//   O <value>                              a graph output, in order
//
// Value ids are the graph's unique value numbers. Every function returns nullptr on success and
// an error message (to be freed with `ppl_trace_free`) on failure.
#include <torch/torch.h>
#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <ATen/record_function.h>

#include <cstring>
#include <iomanip>
#include <sstream>
#include <string>

namespace {

// Tensors made from host data (tch's `Tensor::from_slice`, `Tensor::from(x)`) are an
// `aten::zeros` that the tracer records, then a memcpy that it cannot see. So every `aten::zeros`
// output made while tracing is kept here with its version counter; at the end, one whose version
// is unchanged (no in-place op touched it) is replaced in the graph by a constant holding its
// final contents.
thread_local std::vector<std::pair<at::Tensor, int64_t>> made_by_zeros;
thread_local std::optional<at::CallbackHandle> zeros_callback;

void watch_zeros() {
  made_by_zeros.clear();
  zeros_callback = at::addThreadLocalCallback(
      at::RecordFunctionCallback(
          [](const at::RecordFunction &) -> std::unique_ptr<at::ObserverContext> {
            return nullptr;
          },
          [](const at::RecordFunction &fn, at::ObserverContext *) {
            if (std::strcmp(fn.name(), "aten::zeros") != 0) return;
            for (const auto &out : fn.outputs()) {
              if (out.isTensor()) {
                const auto &t = out.toTensor();
                made_by_zeros.emplace_back(t, t._version());
              }
            }
          })
          .needsOutputs(true));
}

void unwatch_zeros() {
  if (zeros_callback) {
    at::removeCallback(*zeros_callback);
    zeros_callback.reset();
  }
}

void freeze_host_data(const std::shared_ptr<torch::jit::tracer::TracingState> &state) {
  auto graph = state->graph;
  for (auto &[t, version] : made_by_zeros) {
    if (t._version() != version || !state->hasValue(t)) continue;
    auto *v = state->getValue(t);
    if (v->node()->kind() != torch::jit::aten::zeros) continue;
    torch::jit::WithInsertPoint guard(v->node());
    auto *c = graph->insertConstant(t.detach().clone());
    v->replaceAllUsesWith(c);
  }
  made_by_zeros.clear();
}

char *dup(const std::string &s) {
  char *out = static_cast<char *>(malloc(s.size() + 1));
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

void write_constant(std::ostringstream &o, torch::jit::Node *n) {
  auto *v = n->output();
  o << "C " << v->unique() << ' ';
  auto iv = torch::jit::toIValue(v);
  if (!iv) {
    o << "s\n";
    return;
  }
  if (iv->isTensor()) {
    auto t = iv->toTensor().detach().to(torch::kCPU, torch::kDouble).contiguous();
    o << "t " << t.dim();
    for (auto d : t.sizes()) o << ' ' << d;
    const double *p = t.data_ptr<double>();
    for (int64_t i = 0; i < t.numel(); ++i) o << ' ' << p[i];
  } else if (iv->isBool()) {
    o << "b " << (iv->toBool() ? 1 : 0);
  } else if (iv->isInt()) {
    o << "i " << iv->toInt();
  } else if (iv->isDouble()) {
    o << "f " << iv->toDouble();
  } else if (iv->isNone()) {
    o << "n";
  } else if (iv->isIntList()) {
    auto l = iv->toIntVector();
    o << "l " << l.size();
    for (auto x : l) o << ' ' << x;
  } else {
    o << "s";
  }
  o << '\n';
}

}  // namespace

extern "C" {

void ppl_trace_free(char *s) { free(s); }

char *ppl_trace_begin(torch::Tensor **inputs, int ninputs) {
  try {
    if (torch::jit::tracer::isTracing()) return dup("cannot nest tracing calls");
    auto state = std::make_shared<torch::jit::tracer::TracingState>();
    torch::jit::tracer::setTracingState(state);
    watch_zeros();
    for (int i = 0; i < ninputs; ++i) {
      auto value = state->graph->addInput();
      value->setType(torch::jit::TensorType::get());
      state->setValue(*inputs[i], value);
    }
    return nullptr;
  } catch (const std::exception &e) {
    unwatch_zeros();
    torch::jit::tracer::setTracingState(nullptr);
    return dup(e.what());
  }
}

void ppl_trace_abandon() {
  unwatch_zeros();
  made_by_zeros.clear();
  torch::jit::tracer::setTracingState(nullptr);
}

// On success `*text` holds the graph (free it with `ppl_trace_free`).
char *ppl_trace_end(torch::Tensor **outputs, int noutputs, char **text) {
  try {
    auto state = torch::jit::tracer::getTracingState();
    if (!state) return dup("not tracing");
    unwatch_zeros();
    for (int i = 0; i < noutputs; ++i) {
      state->graph->registerOutput(state->getOutput(*outputs[i], i));
    }
    freeze_host_data(state);
    torch::jit::tracer::setTracingState(nullptr);
    auto graph = state->graph;
    torch::jit::EliminateDeadCode(graph);
    std::ostringstream o;
    o << std::setprecision(17);
    for (auto *v : graph->inputs()) o << "I " << v->unique() << '\n';
    for (auto *n : graph->nodes()) {
      if (n->kind() == torch::jit::prim::Constant) {
        write_constant(o, n);
        continue;
      }
      o << "N " << n->kind().toQualString() << ' ' << n->inputs().size();
      for (auto *v : n->inputs()) o << ' ' << v->unique();
      o << ' ' << n->outputs().size();
      for (auto *v : n->outputs()) o << ' ' << v->unique();
      o << '\n';
    }
    for (auto *v : graph->outputs()) o << "O " << v->unique() << '\n';
    *text = dup(o.str());
    return nullptr;
  } catch (const std::exception &e) {
    unwatch_zeros();
    made_by_zeros.clear();
    torch::jit::tracer::setTracingState(nullptr);
    return dup(e.what());
  }
}

}  // extern "C"
