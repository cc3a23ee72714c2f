// torch.distributed's c10d for ppl::distributed: a TCPStore for rendezvous and small messages, and
// a Gloo process group for collectives on tensors. Everything here is libtorch's own code (the
// PyPI wheel's libtorch_cpu.so holds TCPStore and ProcessGroupGloo); this file only adapts it to a
// C interface. Gloo's headers, which ProcessGroupGloo.hpp includes, come from Debian's
// libgloo-dev (nothing of it is linked). Built without them (PPL_HAVE_GLOO undefined), every
// function reports that instead.
//
// Conventions as in trace.cpp: a function returns NULL on success or a malloc'd error message
// that the caller frees with ppl_dist_free.

#include <ATen/ATen.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <c10/util/Logging.h>

#ifdef PPL_HAVE_GLOO
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#endif

namespace {
char *dup_str(const std::string &s) {
  char *out = static_cast<char *>(malloc(s.size() + 1));
  std::memcpy(out, s.c_str(), s.size() + 1);
  return out;
}

std::chrono::milliseconds ms(double seconds) {
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000.0));
}

// The first line of an exception's text: c10's messages carry a C++ backtrace after it.
std::string first_line(const char *what) {
  std::string s(what);
  auto nl = s.find("\nException raised from");
  if (nl != std::string::npos) s = s.substr(0, nl);
  return s;
}

#ifdef PPL_HAVE_GLOO
struct Store {
  c10::intrusive_ptr<c10d::Store> store;
};
struct Group {
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
};

char *wait_work(const c10::intrusive_ptr<c10d::Work> &work) {
  work->wait();
  return nullptr;
}
#endif
}  // namespace

#define PPL_TRY(body)                                   \
  try {                                                 \
    body                                                \
  } catch (const std::exception &e) {                   \
    return dup_str(first_line(e.what()));               \
  }

extern "C" {

void ppl_dist_free(char *s) { free(s); }

int ppl_dist_have_gloo() {
#ifdef PPL_HAVE_GLOO
  return 1;
#else
  return 0;
#endif
}

#ifdef PPL_HAVE_GLOO

// A TCPStore at host:port: the server when `is_server` (then it waits for no one), a client
// otherwise, seen through `prefix` (every key is prefixed). `timeout_s` bounds every blocking
// store operation.
char *ppl_dist_store_new(const char *host, int port, int is_server, int world, double timeout_s,
                         const char *prefix, void **out) {
  PPL_TRY({
    // When a peer vanishes, c10d logs warnings with a C++ backtrace (from the store client and
    // the heartbeat) before ppl reports the failure in its own words, naming the rank. Keep
    // libtorch's log to errors unless the user asked for a level (TORCH_CPP_LOG_LEVEL).
    if (std::getenv("TORCH_CPP_LOG_LEVEL") == nullptr) FLAGS_caffe2_log_level = 2;
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = is_server != 0;
    o.numWorkers = static_cast<std::size_t>(world);
    o.waitWorkers = false;
    o.timeout = ms(timeout_s);
    auto tcp = c10::make_intrusive<c10d::TCPStore>(std::string(host), o);
    c10::intrusive_ptr<c10d::Store> store =
        c10::make_intrusive<c10d::PrefixStore>(std::string(prefix), tcp);
    *out = new Store{store};
    return nullptr;
  })
}

void ppl_dist_store_free(void *s) { delete static_cast<Store *>(s); }

char *ppl_dist_store_set(void *s, const char *key, const uint8_t *data, size_t n) {
  PPL_TRY({
    std::vector<uint8_t> v(data, data + n);
    static_cast<Store *>(s)->store->set(std::string(key), v);
    return nullptr;
  })
}

// Waits up to the store's timeout for `key`; the value is malloc'd into *out (free with
// ppl_dist_free).
char *ppl_dist_store_get(void *s, const char *key, uint8_t **out, size_t *n) {
  PPL_TRY({
    auto v = static_cast<Store *>(s)->store->get(std::string(key));
    *n = v.size();
    *out = static_cast<uint8_t *>(malloc(v.size() + 1));
    if (!v.empty()) std::memcpy(*out, v.data(), v.size());
    return nullptr;
  })
}

char *ppl_dist_store_check(void *s, const char *key, int *exists) {
  PPL_TRY({
    *exists = static_cast<Store *>(s)->store->check({std::string(key)}) ? 1 : 0;
    return nullptr;
  })
}

char *ppl_dist_store_add(void *s, const char *key, int64_t value, int64_t *out) {
  PPL_TRY({
    *out = static_cast<Store *>(s)->store->add(std::string(key), value);
    return nullptr;
  })
}

// A Gloo group of `world` ranks over the store; `host` is the address this rank's transport binds
// to (empty: the machine's hostname, Gloo's default device).
char *ppl_dist_group_new(void *s, int rank, int world, double timeout_s, const char *host,
                         void **out) {
  PPL_TRY({
    auto opts = c10d::ProcessGroupGloo::Options::create(ms(timeout_s));
    // As torch does: GLOO_SOCKET_IFNAME picks the interface on hosts with several.
    std::string h(host);
    const char *ifname = std::getenv("GLOO_SOCKET_IFNAME");
    opts->devices.push_back(
        ifname != nullptr ? c10d::ProcessGroupGloo::createDeviceForInterface(ifname)
        : h.empty()       ? c10d::ProcessGroupGloo::createDefaultDevice()
                          : c10d::ProcessGroupGloo::createDeviceForHostname(h));
    auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(static_cast<Store *>(s)->store, rank,
                                                          world, opts);
    *out = new Group{pg};
    return nullptr;
  })
}

void ppl_dist_group_free(void *g) { delete static_cast<Group *>(g); }

char *ppl_dist_allreduce_sum(void *g, at::Tensor *t) {
  PPL_TRY({
    std::vector<at::Tensor> ts = {*t};
    return wait_work(static_cast<Group *>(g)->pg->allreduce(ts));
  })
}

char *ppl_dist_broadcast(void *g, at::Tensor *t, int root) {
  PPL_TRY({
    std::vector<at::Tensor> ts = {*t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    return wait_work(static_cast<Group *>(g)->pg->broadcast(ts, o));
  })
}

// `out` is a contiguous tensor of shape [world] + in.shape: row r receives rank r's `in`.
char *ppl_dist_allgather(void *g, at::Tensor *in, at::Tensor *out) {
  PPL_TRY({
    auto &pg = static_cast<Group *>(g)->pg;
    std::vector<at::Tensor> rows;
    for (int64_t r = 0; r < out->size(0); ++r) rows.push_back(out->select(0, r));
    std::vector<std::vector<at::Tensor>> outs = {rows};
    std::vector<at::Tensor> ins = {*in};
    return wait_work(pg->allgather(outs, ins));
  })
}

char *ppl_dist_barrier(void *g) {
  PPL_TRY({ return wait_work(static_cast<Group *>(g)->pg->barrier()); })
}

#else  // no Gloo headers at build time

static char *no_gloo() {
  return dup_str(
      "ppl was built without Gloo's headers, so torch.distributed (c10d/Gloo) is unavailable: "
      "install them (Debian: apt-get install libgloo-dev; `make setup` does it) and rebuild "
      "ppl-runtime (cargo clean -p ppl-runtime)");
}
char *ppl_dist_store_new(const char *, int, int, int, double, const char *, void **) {
  return no_gloo();
}
void ppl_dist_store_free(void *) {}
char *ppl_dist_store_set(void *, const char *, const uint8_t *, size_t) { return no_gloo(); }
char *ppl_dist_store_get(void *, const char *, uint8_t **, size_t *) { return no_gloo(); }
char *ppl_dist_store_check(void *, const char *, int *) { return no_gloo(); }
char *ppl_dist_store_add(void *, const char *, int64_t, int64_t *) { return no_gloo(); }
char *ppl_dist_group_new(void *, int, int, double, const char *, void **) { return no_gloo(); }
void ppl_dist_group_free(void *) {}
char *ppl_dist_allreduce_sum(void *, at::Tensor *) { return no_gloo(); }
char *ppl_dist_broadcast(void *, at::Tensor *, int) { return no_gloo(); }
char *ppl_dist_allgather(void *, at::Tensor *, at::Tensor *) { return no_gloo(); }
char *ppl_dist_barrier(void *) { return no_gloo(); }

#endif

}  // extern "C"
