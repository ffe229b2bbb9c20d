// Binding of the WLMC chain (csrc/mlp.h, csrc/wlmc.h): a class that owns the MLP caches, the
// landscape and the counters. Arrays are checked here (dtype, shape, layout, label ranges) because a
// bad label or size would make the C++ read out of bounds.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "checks.h"
#include "mlp.h"
#include "wlmc.h"
#include "wlmc_args.h"

namespace py = pybind11;
using namespace ee::bind;

namespace {

py::array_t<double> grid_array(ee::WlmcChain& c, std::vector<double>& v) {
    py::array_t<double> out({c.grid().nx, c.grid().ny});
    std::copy(v.begin(), v.end(), out.mutable_data());
    return out;
}

void set_grid_array(ee::WlmcChain& c, std::vector<double>& v, py::handle obj, const char* name) {
    const double* p = f64_array(obj, name, {c.grid().nx, c.grid().ny});
    std::copy(p, p + v.size(), v.begin());
}

}  // namespace

void register_wlmc(py::module_& m) {
    py::class_<ee::WlmcChain>(m, "WlmcChain", "Wang-Landau Monte Carlo chain over an MLP (csrc/wlmc.h).")
        .def(py::init(&make_chain), py::arg("sizes"), py::arg("acts"), py::arg("bias"), py::arg("loss"),
             py::arg("metric"), py::arg("params"), py::arg("X_train"), py::arg("y_train"), py::arg("X_test"),
             py::arg("y_test"), py::arg("bounds"), py::arg("x_min"), py::arg("x_max"), py::arg("nx"),
             py::arg("y_min"), py::arg("y_max"), py::arg("ny"), py::arg("seed"), py::arg("walker"), py::arg("step"),
             py::arg("refresh_every"), py::arg("y_log"), py::arg("adapt_every") = 1000)
        .def("run",
             [](ee::WlmcChain& c, int64_t n, double ln_f) {
                 if (n < 0) throw py::value_error("n_steps: expected a count >= 0");
                 if (!(ln_f >= 0.0) || !std::isfinite(ln_f)) throw py::value_error("ln_f: expected a finite number >= 0");
                 int code;
                 {
                     py::gil_scoped_release release;
                     code = c.run(n, ln_f);
                 }
                 if (code != 0) throw py::value_error("the current state lies off the grid");
             },
             py::arg("n_steps"), py::arg("ln_f"))
        .def("propose",
             [](ee::WlmcChain& c, int64_t p, double value) {
                 if (p < 0 || p >= c.mlp().n_params()) throw py::value_error("p: parameter index out of range");
                 if (!std::isfinite(value)) throw py::value_error("value: expected a finite number");
                 double loss, metric;
                 c.mlp().propose(p, value, loss, metric);
                 return py::make_tuple(loss, metric);
             },
             py::arg("p"), py::arg("value"))
        .def("accept", [](ee::WlmcChain& c) { c.mlp().accept(); })
        .def("set_full_recompute", [](ee::WlmcChain& c, bool on) { c.mlp().set_full_recompute(on); }, py::arg("on"),
             "Recompute every layer per move instead of the incremental pass (benchmarks, cross-checks).")
        .def("refresh", [](ee::WlmcChain& c) { c.mlp().refresh(); })
        .def("full_eval",
             [](const ee::WlmcChain& c, bool test) {
                 double loss, metric;
                 c.mlp().full_eval(test, loss, metric);
                 return py::make_tuple(loss, metric);
             },
             py::arg("test"))
        .def_property_readonly("train_loss", [](const ee::WlmcChain& c) { return c.mlp().train_loss(); })
        .def_property_readonly("test_metric", [](const ee::WlmcChain& c) { return c.mlp().test_metric(); })
        .def_property_readonly("params", [](const ee::WlmcChain& c) {
            const auto& v = c.mlp().params();
            py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
            std::copy(v.begin(), v.end(), out.mutable_data());
            return out;
        })
        .def("set_params",
             [](ee::WlmcChain& c, py::handle obj) {
                 const int64_t P = c.mlp().n_params();
                 const double* p = f64_array(obj, "params", {P});
                 require_finite(p, P, "params");
                 for (int64_t k = 0; k < P; ++k) {
                     if (!(std::fabs(p[k]) <= c.bound(k)))
                         throw py::value_error("params: parameter " + std::to_string(k) + " lies outside its box");
                 }
                 for (int64_t k = 0; k < P; ++k) {
                     double loss, metric;
                     c.mlp().propose(k, p[k], loss, metric);
                     c.mlp().accept();
                 }
                 c.mlp().refresh();
             },
             py::arg("params"), "Set every parameter (then a full refresh).")
        .def("export_cache", [](const ee::WlmcChain& c) {
            const std::vector<double> v = c.mlp().export_cache();
            py::array_t<double> out(static_cast<py::ssize_t>(v.size()));
            std::copy(v.begin(), v.end(), out.mutable_data());
            return out;
        })
        .def("import_cache",
             [](ee::WlmcChain& c, py::handle obj) {
                 py::array a = as_ndarray(obj, "cache");
                 require_f64(a, "cache");
                 require_1d(a, "cache");
                 require_contiguous(a, "cache");
                 const double* p = static_cast<const double*>(a.data());
                 if (!c.mlp().import_cache(std::vector<double>(p, p + a.shape(0))))
                     throw py::value_error("cache: the length does not match this network and data");
             },
             py::arg("cache"))
        .def_property("lnG", [](ee::WlmcChain& c) { return grid_array(c, c.lnG()); },
                      [](ee::WlmcChain& c, py::handle v) { set_grid_array(c, c.lnG(), v, "lnG"); })
        .def_property("H", [](ee::WlmcChain& c) { return grid_array(c, c.H()); },
                      [](ee::WlmcChain& c, py::handle v) { set_grid_array(c, c.H(), v, "H"); })
        .def_property(
            "counters",
            [](ee::WlmcChain& c) {
                const auto& k = c.counters();
                py::dict d;
                d["t"] = k.t;
                d["step"] = k.step;
                d["window_accepted"] = k.window_accepted;
                d["accepted"] = k.accepted;
                d["rejected_box"] = k.rejected_box;
                d["rejected_grid"] = k.rejected_grid;
                d["rejected_wl"] = k.rejected_wl;
                return d;
            },
            [](ee::WlmcChain& c, py::handle obj) {
                // every field checked before any is written: a refused dict leaves the chain as it was
                if (!py::isinstance<py::dict>(obj))
                    throw py::type_error("counters: expected a dict, got " + std::string(py::str(obj.get_type().attr("__name__"))));
                const py::dict d = py::reinterpret_borrow<py::dict>(obj);
                auto field = [&](const char* key) -> py::object {
                    if (!d.contains(key)) throw py::value_error(std::string("counters: missing key '") + key + "'");
                    return d[key];
                };
                auto count = [&](const char* key) -> int64_t {
                    py::object v = field(key);
                    py::int_ iv;
                    try {
                        if (py::isinstance<py::bool_>(v)) throw py::type_error("bool");
                        iv = py::module_::import("operator").attr("index")(v);
                    } catch (const std::exception&) {
                        throw py::type_error(std::string("counters['") + key + "']: expected an integer");
                    }
                    if (iv < py::int_(0) || iv > py::int_(INT64_MAX))
                        throw py::value_error(std::string("counters['") + key + "']: expected a count in [0, 2^63)");
                    return iv.cast<int64_t>();
                };
                py::object sv = field("step");
                double step;
                try {
                    step = sv.cast<double>();
                } catch (const py::cast_error&) {
                    throw py::type_error("counters['step']: expected a number");
                }
                if (!(step > 0.0) || !std::isfinite(step)) throw py::value_error("counters['step']: expected a finite number > 0");
                const int64_t t = count("t"), wa = count("window_accepted"), acc = count("accepted"),
                              rb = count("rejected_box"), rg = count("rejected_grid"), rw = count("rejected_wl");
                auto& k = c.counters();
                k.t = static_cast<uint64_t>(t);
                k.step = step;
                k.window_accepted = wa;
                k.accepted = acc;
                k.rejected_box = rb;
                k.rejected_grid = rg;
                k.rejected_wl = rw;
            })
        .def("current_bin", [](const ee::WlmcChain& c) -> py::object {
            int64_t i, j;
            if (!c.current_bin(i, j)) return py::none();
            return py::make_tuple(i, j);
        });
    m.def("wlmc_randoms",
          [](uint64_t seed, uint64_t walker, uint64_t t) {
              const ee::WlmcRandoms r = ee::wlmc_randoms(seed, walker, t);
              return py::make_tuple(r.param_word, r.move, r.accept);
          },
          py::arg("seed"), py::arg("walker"), py::arg("t"), "The WLMC chain's random words of step t.");
}
