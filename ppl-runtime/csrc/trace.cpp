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
//   R <value> <ndim> <dim>... <v>...       what a random op drew while tracing (for checks)
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

// Tensors made from host data (tch's `Tensor::from_slice`, `Tensor::from(x)`) are a
// `torch::zeros` that the tracer would record, then a memcpy that it cannot see. So while tracing,
// every `aten::zeros` output is held here: `torch::zeros` (the autograd factory wrapper that tch
// calls) then sees a shared tensor and returns a fresh TensorImpl for it (`make_variable`), which
// the tracer has never seen; at its first use in a traced op the tracer bakes it in as a constant
// with its contents at that moment, after the memcpy. Checked by ppl-runtime's `tests/jit.rs`
// (data made inside a traced model).
thread_local std::vector<at::Tensor> made_by_zeros;
thread_local std::optional<at::CallbackHandle> zeros_callback;
// What the random ops drew while tracing, by graph value: a compiled program can replay them to
// be checked against libtorch's own gradient of the traced run. Copies only: holding the drawn
// tensor itself would make `torch::randn` return a TensorImpl the tracer does not know.
thread_local std::vector<std::pair<size_t, at::Tensor>> random_draws;

// The random ops whose draws are recorded: the compiler's own list, handed over by the Rust side
// at `ppl_trace_begin` (`jit/random.rs`, `RANDOM_OPS`), so that the two cannot disagree.
thread_local std::vector<std::string> random_op_names;

bool is_random_op(const char *name) {
  for (const auto &n : random_op_names) {
    if (std::strcmp(name, n.c_str()) == 0) return true;
  }
  return false;
}

void watch_zeros() {
  made_by_zeros.clear();
  random_draws.clear();
  zeros_callback = at::addThreadLocalCallback(
      at::RecordFunctionCallback(
          [](const at::RecordFunction &) -> std::unique_ptr<at::ObserverContext> {
            return nullptr;
          },
          [](const at::RecordFunction &fn, at::ObserverContext *) {
            bool zeros = std::strcmp(fn.name(), "aten::zeros") == 0;
            bool random = !zeros && is_random_op(fn.name());
            if (!zeros && !random) return;
            auto state = torch::jit::tracer::getTracingState();
            for (const auto &out : fn.outputs()) {
              if (!out.isTensor()) continue;
              const auto &t = out.toTensor();
              if (zeros) {
                made_by_zeros.push_back(t);
              } else if (state && state->hasValue(t)) {
                at::tracer::impl::NoTracerDispatchMode no_trace;
                auto copy = t.detach().to(torch::kCPU, torch::kDouble, false, true);
                random_draws.emplace_back(state->getValue(t)->unique(), copy);
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

char *dup(const std::string &s) {
  char *out = static_cast<char *>(malloc(s.size() + 1));
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

void write_tensor(std::ostringstream &o, const at::Tensor &tensor) {
  auto t = tensor.detach().to(torch::kCPU, torch::kDouble).contiguous();
  o << t.dim();
  for (auto d : t.sizes()) o << ' ' << d;
  const double *p = t.data_ptr<double>();
  for (int64_t i = 0; i < t.numel(); ++i) o << ' ' << p[i];
}

void write_random_draws(std::ostringstream &o) {
  for (const auto &[value, t] : random_draws) {
    o << "R " << value << ' ';
    write_tensor(o, t);
    o << '\n';
  }
  random_draws.clear();
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
    o << "t ";
    write_tensor(o, iv->toTensor());
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

// `random_ops`: the names of the random ops to record draws of, separated by spaces.
char *ppl_trace_begin(torch::Tensor **inputs, int ninputs, const char *random_ops) {
  try {
    if (torch::jit::tracer::isTracing()) return dup("cannot nest tracing calls");
    random_op_names.clear();
    std::string names(random_ops);
    size_t start = 0;
    while (start < names.size()) {
      size_t end = names.find(' ', start);
      if (end == std::string::npos) end = names.size();
      if (end > start) random_op_names.push_back(names.substr(start, end - start));
      start = end + 1;
    }
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
  random_draws.clear();
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
    made_by_zeros.clear();
    std::ostringstream o;
    o << std::setprecision(17);
    write_random_draws(o);
    torch::jit::tracer::setTracingState(nullptr);
    auto graph = state->graph;
    torch::jit::EliminateDeadCode(graph);
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
    random_draws.clear();
    torch::jit::tracer::setTracingState(nullptr);
    return dup(e.what());
  }
}

namespace {
char *check_plain(torch::Tensor *t, size_t n) {
  if (!t->defined()) return dup("undefined tensor");
  if (!t->device().is_cpu()) return dup("not a CPU tensor");
  if (!t->is_contiguous()) return dup("not a contiguous tensor");
  if ((size_t)t->numel() != n) return dup("wrong number of values");
  auto k = t->scalar_type();
  if (k != torch::kFloat && k != torch::kDouble) return dup("not a float32 or float64 tensor");
  return nullptr;
}
}  // namespace

char *ppl_read_f64(torch::Tensor *t, double *out, size_t n) {
  try {
    if (char *e = check_plain(t, n)) return e;
    if (t->scalar_type() == torch::kDouble) {
      std::memcpy(out, t->data_ptr<double>(), n * sizeof(double));
    } else {
      const float *p = t->data_ptr<float>();
      for (size_t i = 0; i < n; ++i) out[i] = p[i];
    }
    return nullptr;
  } catch (const std::exception &e) {
    return dup(e.what());
  }
}

char *ppl_write_f64(torch::Tensor *t, const double *values, size_t n) {
  try {
    if (char *e = check_plain(t, n)) return e;
    if (t->scalar_type() == torch::kDouble) {
      std::memcpy(t->data_ptr<double>(), values, n * sizeof(double));
    } else {
      float *p = t->data_ptr<float>();
      for (size_t i = 0; i < n; ++i) p[i] = static_cast<float>(values[i]);
    }
    return nullptr;
  } catch (const std::exception &e) {
    return dup(e.what());
  }
}

// The CPU generator's state (what `torch.get_rng_state()` returns): its size in bytes, a copy of
// it, and restoring it. The `seed` handler and `ppl::get_rng_state`/`set_rng_state` use these.
size_t ppl_rng_state_size() {
  auto gen = at::detail::getDefaultCPUGenerator();
  std::lock_guard<std::mutex> lock(gen.mutex());
  return static_cast<size_t>(gen.get_state().numel());
}

char *ppl_rng_get_state(uint8_t *out, size_t n) {
  try {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    auto state = gen.get_state();
    if (static_cast<size_t>(state.numel()) != n) return dup("the generator state changed size");
    std::memcpy(out, state.data_ptr<uint8_t>(), n);
    return nullptr;
  } catch (const std::exception &e) {
    return dup(e.what());
  }
}

char *ppl_rng_set_state(const uint8_t *in, size_t n) {
  try {
    auto state = torch::empty({static_cast<int64_t>(n)}, torch::kUInt8);
    std::memcpy(state.data_ptr<uint8_t>(), in, n);
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(state);
    return nullptr;
  } catch (const std::exception &e) {
    return dup(e.what());
  }
}

}  // extern "C"
