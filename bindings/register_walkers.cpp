// Binding of the CPU walker threads (csrc/wlmc_walkers_cpu.h); the CUDA twin is in register_cuda.cpp
// with the same methods. Arrays are checked in wlmc_args.h.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "wlmc_args.h"
#include "wlmc_walkers_cpu.h"

namespace py = pybind11;
using namespace ee::bind;
using ee::walkers::CpuWalkers;

namespace {

CpuWalkers* make(std::vector<int64_t> sizes, std::vector<int> acts, std::vector<bool> bias, int loss, int metric,
                 py::handle params, py::handle X_train, py::handle t_train, py::handle X_test, py::handle t_test,
                 py::handle bounds, double x_min, double x_max, int64_t nx, double y_min, double y_max, int64_t ny,
                 uint64_t seed, double step, bool y_log, int64_t walkers, int64_t refresh_every) {
    ee::walkers::Image img =
        make_walkers_image(std::move(sizes), std::move(acts), std::move(bias), loss, metric, params, X_train, t_train,
                           X_test, t_test, bounds, x_min, x_max, nx, y_min, y_max, ny, step, y_log, walkers,
                           refresh_every);
    py::gil_scoped_release release;
    return new CpuWalkers(std::move(img), seed);
}

}  // namespace

void register_walkers(py::module_& m) {
    py::class_<CpuWalkers>(m, "WlmcWalkers",
                           "Many WLMC walkers on CPU threads sharing one ln g (csrc/wlmc_walkers_cpu.h).")
        .def(py::init(&make), py::arg("sizes"), py::arg("acts"), py::arg("bias"), py::arg("loss"), py::arg("metric"),
             py::arg("params"), py::arg("X_train"), py::arg("y_train"), py::arg("X_test"), py::arg("y_test"),
             py::arg("bounds"), py::arg("x_min"), py::arg("x_max"), py::arg("nx"), py::arg("y_min"), py::arg("y_max"),
             py::arg("ny"), py::arg("seed"), py::arg("step"), py::arg("y_log"), py::arg("walkers"),
             py::arg("refresh_every") = 0)
        .def("run",
             [](CpuWalkers& w, int64_t n, double ln_f, int threads) {
                 if (n < 0) throw py::value_error("n_steps: expected a count >= 0");
                 if (!(ln_f >= 0.0) || !std::isfinite(ln_f)) throw py::value_error("ln_f: expected a finite number >= 0");
                 if (threads < 1 || threads > 4096) throw py::value_error("threads: expected a count in [1, 4096]");
                 py::gil_scoped_release release;
                 w.run(n, ln_f, threads);
             },
             py::arg("n_steps"), py::arg("ln_f"), py::arg("threads") = 1,
             "n_steps walker-steps in all (n // W per walker, one more for the first n % W).")
        .def("stats", [](CpuWalkers& w) { return stats_dict(w.stats()); })
        .def("landscape",
             [](const CpuWalkers& w, int64_t nx, int64_t ny) {
                 if (nx != w.nx() || ny != w.ny()) throw py::value_error("nx, ny: not this sampler's grid");
                 std::vector<double> G, H;
                 w.landscape(G, H);
                 return py::make_tuple(as_array(G, {nx, ny}), as_array(H, {nx, ny}));
             },
             py::arg("nx"), py::arg("ny"))
        .def("walkers",
             [](const CpuWalkers& w) {
                 std::vector<double> P, S;
                 w.walkers(P, S);
                 return py::make_tuple(as_array(P, {w.n_walkers(), w.n_params()}),
                                       as_array(S, {w.n_walkers(), int64_t{ee::walkers::S_COUNT}}));
             })
        .def("upload",
             [](CpuWalkers& w, py::handle lnG, py::handle H, py::handle params, py::handle state, int64_t nx,
                int64_t ny) {
                 if (nx != w.nx() || ny != w.ny()) throw py::value_error("nx, ny: not this sampler's grid");
                 WalkersUpload u =
                     walkers_upload_args(lnG, H, params, state, nx, ny, w.n_walkers(), w.n_params(), w.bounds());
                 py::gil_scoped_release release;
                 w.upload(u.lnG, u.H, u.params, u.state);
             },
             py::arg("lnG"), py::arg("H"), py::arg("params"), py::arg("state"), py::arg("nx"), py::arg("ny"))
        .def("workspace",
             [](const CpuWalkers& w) {
                 const std::vector<double> v = w.workspace();
                 return as_array(v, {static_cast<int64_t>(v.size())});
             })
        .def("import_workspace",
             [](CpuWalkers& w, py::handle obj) {
                 py::array a = as_ndarray(obj, "workspace");
                 require_f64(a, "workspace");
                 require_1d(a, "workspace");
                 require_contiguous(a, "workspace");
                 const double* p = static_cast<const double*>(a.data());
                 if (a.shape(0) == w.n_walkers() * w.workspace_size()) {
                     // the state fields index ln g: check them as upload does
                     const int64_t W = w.n_walkers(), P = w.n_params(), ws = w.workspace_size();
                     std::vector<double> params(W * P), state(W * ee::walkers::S_COUNT);
                     for (int64_t k = 0; k < W; ++k) {
                         std::copy(p + k * ws, p + k * ws + P, params.begin() + k * P);
                         std::copy(p + k * ws + P, p + k * ws + P + ee::walkers::S_COUNT,
                                   state.begin() + k * ee::walkers::S_COUNT);
                     }
                     check_walker_states(state, params, w.bounds(), W, P, w.nx(), w.ny());
                     require_finite(p, a.shape(0), "workspace");
                 }
                 if (!w.import_workspace(std::vector<double>(p, p + a.shape(0))))
                     throw py::value_error("workspace: the length does not match these walkers, network and data");
             },
             py::arg("workspace"))
        .def_property_readonly("walker_count", &CpuWalkers::n_walkers)
        .def_property_readonly("n_params", &CpuWalkers::n_params);
    m.attr("walker_state_size") = static_cast<int>(ee::walkers::S_COUNT);
}
