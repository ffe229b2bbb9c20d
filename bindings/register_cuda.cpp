// Bindings of the CUDA kernels. Arrays arrive as objects with __cuda_array_interface__ (torch CUDA
// tensors, CuPy arrays): their dtype, shape, layout and device are checked here. Without CUDA in
// the build, only cuda_built = False and cuda_device_count() = 0 are defined.
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "checks.h"

#if defined(EE_WITH_CUDA)
#include <pybind11/stl.h>

#include "cuda/cuda_kernels.h"
#include "cuda/wlmc_walkers.h"
#include "landscape.h"
#include "wlmc_args.h"
#endif

namespace py = pybind11;
using namespace ee::bind;

#if defined(EE_WITH_CUDA)
namespace {

struct DevArray {
    void* ptr = nullptr;
    std::vector<int64_t> shape;
    std::string typestr;
    int64_t size = 1;
    int device = -1;
};

DevArray as_device_array(py::handle obj, const char* name) {
    if (!py::hasattr(obj, "__cuda_array_interface__"))
        throw py::type_error(std::string(name) + ": expected a CUDA array (a torch CUDA tensor), got " +
                             std::string(py::str(py::type::of(obj).attr("__name__"))));
    py::dict cai = obj.attr("__cuda_array_interface__");
    DevArray a;
    for (auto s : py::tuple(cai["shape"])) {
        a.shape.push_back(s.cast<int64_t>());
        a.size *= a.shape.back();
    }
    a.typestr = cai["typestr"].cast<std::string>();
    py::tuple data = cai["data"];
    a.ptr = reinterpret_cast<void*>(data[0].cast<uintptr_t>());
    const bool readonly = data[1].cast<bool>();
    if (cai.contains("strides") && !cai["strides"].is_none()) {
        py::tuple strides = cai["strides"];
        const int64_t item = std::stoll(a.typestr.substr(2));
        int64_t expect = item;
        for (size_t k = a.shape.size(); k-- > 0;) {
            if (a.shape[k] > 1 && strides[k].cast<int64_t>() != expect)
                throw py::value_error(std::string(name) + ": expected a C-contiguous array");
            expect *= a.shape[k];
        }
    }
    if (readonly) throw py::value_error(std::string(name) + ": the array is read-only");
    if (a.size > 0) {
        a.device = ee::cuda::pointer_device(a.ptr);
        if (a.device < 0) throw py::value_error(std::string(name) + ": the data pointer is not CUDA device memory");
    }
    return a;
}

bool float_kind_dev(const DevArray& a, const char* name) {
    if (a.typestr == "<f4") return true;
    if (a.typestr == "<f8") return false;
    throw py::type_error(std::string(name) + ": expected dtype float32 or float64, got typestr " + a.typestr);
}

void require_f64_dev(const DevArray& a, const char* name) {
    if (a.typestr != "<f8") throw py::type_error(std::string(name) + ": expected dtype float64, got typestr " + a.typestr);
}

void require_shape_dev(const DevArray& a, const std::vector<int64_t>& shape, const char* name) {
    if (a.shape != shape)
        throw py::value_error(std::string(name) + ": expected shape " + shape_str(shape) + ", got " + shape_str(a.shape));
}

void same_device(const DevArray& a, const DevArray& ref, const char* name) {
    if (a.size > 0 && ref.size > 0 && a.device != ref.device)
        throw py::value_error(std::string(name) + ": expected an array on the device of the first argument (cuda:" +
                              std::to_string(ref.device) + "), got cuda:" + std::to_string(a.device));
}

void check(int code) {
    if (code != 0) throw std::runtime_error(std::string("CUDA error: ") + ee::cuda::error_string(code));
}

void select_device(const DevArray& a) {
    if (a.device >= 0) check(ee::cuda::set_device(a.device));
}

void* stream_ptr(uintptr_t stream) { return reinterpret_cast<void*>(stream); }

void deposit(py::handle S_obj, double x_min, double x_max, int64_t nx, double y_min, double y_max, int64_t ny,
             py::handle x_obj, py::handle y_obj, py::handle h_obj, double sigma, double cutoff, uintptr_t stream) {
    const ee::GridSpec g = make_grid(x_min, x_max, nx, y_min, y_max, ny);
    DevArray S = as_device_array(S_obj, "S");
    const bool f32 = float_kind_dev(S, "S");
    require_shape_dev(S, {nx, ny}, "S");
    DevArray x = as_device_array(x_obj, "x"), y = as_device_array(y_obj, "y"), h = as_device_array(h_obj, "height");
    for (auto [a, name] : {std::pair<DevArray*, const char*>{&x, "x"}, {&y, "y"}, {&h, "height"}}) {
        require_f64_dev(*a, name);
        if (a->shape.size() != 1) throw py::value_error(std::string(name) + ": expected a 1-D array");
        same_device(*a, S, name);
    }
    if (y.size != x.size) throw py::value_error("y: expected the length of x");
    if (h.size != x.size) throw py::value_error("height: expected the length of x");
    check_hill(g, sigma, cutoff);
    select_device(S);
    py::gil_scoped_release release;
    check(ee::cuda::deposit(S.ptr, f32, g, static_cast<const double*>(x.ptr), static_cast<const double*>(y.ptr),
                            static_cast<const double*>(h.ptr), x.size, sigma, cutoff, stream_ptr(stream)));
}

void gradient(py::handle S_obj, double x_min, double x_max, int64_t nx, double y_min, double y_max, int64_t ny,
              py::handle x_obj, py::handle y_obj, py::handle out_obj, uintptr_t stream) {
    const ee::GridSpec g = make_grid(x_min, x_max, nx, y_min, y_max, ny);
    DevArray S = as_device_array(S_obj, "S");
    const bool f32 = float_kind_dev(S, "S");
    require_shape_dev(S, {nx, ny}, "S");
    DevArray x = as_device_array(x_obj, "x"), y = as_device_array(y_obj, "y"), out = as_device_array(out_obj, "out");
    require_f64_dev(x, "x");
    require_f64_dev(y, "y");
    require_f64_dev(out, "out");
    if (x.shape.size() != 1) throw py::value_error("x: expected a 1-D array");
    require_shape_dev(y, x.shape, "y");
    require_shape_dev(out, {2, x.size}, "out");
    same_device(x, S, "x");
    same_device(y, S, "y");
    same_device(out, S, "out");
    select_device(S);
    py::gil_scoped_release release;
    check(ee::cuda::gradient(S.ptr, f32, g, static_cast<const double*>(x.ptr), static_cast<const double*>(y.ptr),
                             x.size, static_cast<double*>(out.ptr), stream_ptr(stream)));
}

void smooth(py::handle S_obj, py::handle out_obj, py::handle work_obj, double sigma_x, double sigma_y,
            uintptr_t stream) {
    DevArray S = as_device_array(S_obj, "S");
    const bool f32 = float_kind_dev(S, "S");
    if (S.shape.size() != 2) throw py::value_error("S: expected a 2-D array");
    for (auto [s, name] : {std::pair<double, const char*>{sigma_x, "sigma_bins[0]"}, {sigma_y, "sigma_bins[1]"}})
        if (!(s >= 0.0) || !(s <= 1.0e5))
            throw py::value_error(std::string(name) + ": expected a number in [0, 1e5] (bins)");
    if (sigma_x > std::max<double>(static_cast<double>(S.shape[0]), 100.0) ||
        sigma_y > std::max<double>(static_cast<double>(S.shape[1]), 100.0))
        throw py::value_error("sigma_bins: a filter wider than its axis averages the whole axis");
    DevArray out = as_device_array(out_obj, "out"), work = as_device_array(work_obj, "work");
    require_shape_dev(out, S.shape, "out");
    if (out.typestr != S.typestr) throw py::type_error("out: expected the dtype of S");
    require_f64_dev(work, "work");
    const int64_t need = ee::cuda::smooth_work_size(S.shape[0], S.shape[1], sigma_x, sigma_y);
    require_shape_dev(work, {need}, "work");
    same_device(out, S, "out");
    same_device(work, S, "work");
    select_device(S);
    py::gil_scoped_release release;
    check(ee::cuda::smooth(S.ptr, out.ptr, f32, static_cast<double*>(work.ptr), S.shape[0], S.shape[1], sigma_x,
                           sigma_y, stream_ptr(stream)));
}

void langevin(py::handle theta_obj, py::handle v_obj, py::handle grad_obj, py::handle bound_obj, double dt,
              double gamma, double kT, uint64_t seed, uint64_t step, uintptr_t stream, py::handle step_obj,
              int64_t step_offset) {
    DevArray theta = as_device_array(theta_obj, "theta");
    const bool f32 = float_kind_dev(theta, "theta");
    DevArray v = as_device_array(v_obj, "v"), grad = as_device_array(grad_obj, "grad");
    for (auto [a, name] : {std::pair<DevArray*, const char*>{&v, "v"}, {&grad, "grad"}}) {
        if (a->typestr != theta.typestr) throw py::type_error(std::string(name) + ": expected the dtype of theta");
        require_shape_dev(*a, theta.shape, name);
        same_device(*a, theta, name);
    }
    check_langevin_scalars(dt, gamma, kT);
    const void* bptr = nullptr;
    double b0 = 0.0;
    if (py::hasattr(bound_obj, "__cuda_array_interface__")) {
        DevArray b = as_device_array(bound_obj, "bound");
        if (b.typestr != theta.typestr) throw py::type_error("bound: expected the dtype of theta");
        require_shape_dev(b, theta.shape, "bound");
        same_device(b, theta, "bound");
        bptr = b.ptr;  // values > 0 are checked by the Python layer (a check here would sync)
    } else {
        try {
            b0 = bound_obj.cast<double>();
        } catch (const py::cast_error&) {
            throw py::type_error("bound: expected a number or a CUDA array like theta");
        }
        if (!(b0 > 0.0)) throw py::value_error("bound: expected a number > 0 (inf for no wall)");
    }
    const int64_t* step_dev = nullptr;
    if (!step_obj.is_none()) {
        DevArray s = as_device_array(step_obj, "step_tensor");
        if (s.typestr != "<i8" || s.size != 1) throw py::type_error("step_tensor: expected one int64 on the device");
        same_device(s, theta, "step_tensor");
        step_dev = static_cast<const int64_t*>(s.ptr);
    }
    const ee::LangevinParams p{dt, gamma, kT, seed, step};
    select_device(theta);
    py::gil_scoped_release release;
    check(ee::cuda::langevin(theta.ptr, v.ptr, grad.ptr, bptr, b0, f32, theta.size, p, stream_ptr(stream), step_dev,
                             step_offset));
}

void normal(py::handle out_obj, uint64_t seed, uint64_t step, uintptr_t stream) {
    DevArray out = as_device_array(out_obj, "out");
    const bool f32 = float_kind_dev(out, "out");
    if (out.shape.size() != 1) throw py::value_error("out: expected a 1-D array");
    select_device(out);
    py::gil_scoped_release release;
    check(ee::cuda::normal(out.ptr, f32, seed, step, out.size, stream_ptr(stream)));
}

ee::cuda::WlmcWalkers* make_walkers(std::vector<int64_t> sizes, std::vector<int> acts, std::vector<bool> bias,
                                    int loss, int metric, py::handle params, py::handle X_train, py::handle t_train,
                                    py::handle X_test, py::handle t_test, py::handle bounds, double x_min,
                                    double x_max, int64_t nx, double y_min, double y_max, int64_t ny, uint64_t seed,
                                    double step, bool y_log, int64_t walkers, int64_t refresh_every, int device) {
    if (device < 0 || device >= ee::cuda::device_count())
        throw py::value_error("device: no such CUDA device (" + std::to_string(ee::cuda::device_count()) + " visible)");
    ee::walkers::Image img =
        make_walkers_image(std::move(sizes), std::move(acts), std::move(bias), loss, metric, params, X_train, t_train,
                           X_test, t_test, bounds, x_min, x_max, nx, y_min, y_max, ny, step, y_log, walkers,
                           refresh_every);
    auto* w = new ee::cuda::WlmcWalkers(std::move(img), seed, device);
    if (!w->error().empty()) {
        const std::string msg = w->error();
        delete w;
        throw std::runtime_error("CUDA error: " + msg);
    }
    return w;
}

}  // namespace
#endif

void register_cuda(py::module_& m) {
#if defined(EE_WITH_CUDA)
    m.attr("cuda_built") = true;
    m.def("cuda_device_count", &ee::cuda::device_count, "Number of usable CUDA devices (0 without a driver).");
    m.def("cuda_smooth_work_size", &ee::cuda::smooth_work_size, py::arg("nx"), py::arg("ny"), py::arg("sigma_x"),
          py::arg("sigma_y"));
    m.def("cuda_deposit", &deposit, py::arg("S"), py::arg("x_min"), py::arg("x_max"), py::arg("nx"), py::arg("y_min"),
          py::arg("y_max"), py::arg("ny"), py::arg("x"), py::arg("y"), py::arg("height"), py::arg("sigma"),
          py::arg("cutoff"), py::arg("stream") = 0);
    m.def("cuda_gradient", &gradient, py::arg("S"), py::arg("x_min"), py::arg("x_max"), py::arg("nx"),
          py::arg("y_min"), py::arg("y_max"), py::arg("ny"), py::arg("x"), py::arg("y"), py::arg("out"),
          py::arg("stream") = 0);
    m.def("cuda_smooth", &smooth, py::arg("S"), py::arg("out"), py::arg("work"), py::arg("sigma_x"),
          py::arg("sigma_y"), py::arg("stream") = 0);
    m.def("cuda_langevin", &langevin, py::arg("theta"), py::arg("v"), py::arg("grad"), py::arg("bound"),
          py::arg("dt"), py::arg("gamma"), py::arg("kT"), py::arg("seed"), py::arg("step"), py::arg("stream") = 0,
          py::arg("step_tensor") = py::none(), py::arg("step_offset") = 0);
    m.def("cuda_normal", &normal, py::arg("out"), py::arg("seed"), py::arg("step"), py::arg("stream") = 0);
    using ee::cuda::WlmcWalkers;
    py::class_<WlmcWalkers>(m, "CudaWlmcWalkers",
                            "Many WLMC walkers on a GPU sharing one ln g (csrc/cuda/wlmc_walkers.h); the methods "
                            "of the CPU twin WlmcWalkers.")
        .def(py::init(&make_walkers), py::arg("sizes"), py::arg("acts"), py::arg("bias"), py::arg("loss"),
             py::arg("metric"), py::arg("params"), py::arg("X_train"), py::arg("y_train"), py::arg("X_test"),
             py::arg("y_test"), py::arg("bounds"), py::arg("x_min"), py::arg("x_max"), py::arg("nx"), py::arg("y_min"),
             py::arg("y_max"), py::arg("ny"), py::arg("seed"), py::arg("step"), py::arg("y_log"), py::arg("walkers"),
             py::arg("refresh_every") = 0, py::arg("device") = 0)
        .def("run",
             [](WlmcWalkers& w, int64_t n, double ln_f, int threads) {
                 if (n < 0) throw py::value_error("n_steps: expected a count >= 0");
                 if (!(ln_f >= 0.0) || !std::isfinite(ln_f)) throw py::value_error("ln_f: expected a finite number >= 0");
                 (void)threads;  // one block per walker
                 int code;
                 {
                     py::gil_scoped_release release;
                     code = w.run(n, ln_f);
                 }
                 if (code != 0) throw std::runtime_error("CUDA error: " + w.error());
             },
             py::arg("n_steps"), py::arg("ln_f"), py::arg("threads") = 1,
             "n_steps walker-steps in all (n // W per walker, one more for the first n % W).")
        .def("stats",
             [](WlmcWalkers& w) {
                 std::vector<double> s;
                 if (w.stats(s) != 0) throw std::runtime_error("CUDA error: " + w.error());
                 return stats_dict(s);
             })
        .def("landscape",
             [](const WlmcWalkers& w, int64_t nx, int64_t ny) {
                 if (nx != w.nx() || ny != w.ny()) throw py::value_error("nx, ny: not this sampler's grid");
                 std::vector<double> G, H;
                 if (w.landscape(G, H) != 0) throw std::runtime_error("CUDA error: " + w.error());
                 return py::make_tuple(as_array(G, {nx, ny}), as_array(H, {nx, ny}));
             },
             py::arg("nx"), py::arg("ny"))
        .def("walkers",
             [](const WlmcWalkers& w) {
                 std::vector<double> P, S;
                 if (w.walkers(P, S) != 0) throw std::runtime_error("CUDA error: " + w.error());
                 return py::make_tuple(as_array(P, {w.n_walkers(), w.n_params()}),
                                       as_array(S, {w.n_walkers(), int64_t{ee::walkers::S_COUNT}}));
             })
        .def("upload",
             [](WlmcWalkers& w, py::handle lnG, py::handle H, py::handle params, py::handle state, int64_t nx,
                int64_t ny) {
                 if (nx != w.nx() || ny != w.ny()) throw py::value_error("nx, ny: not this sampler's grid");
                 WalkersUpload u =
                     walkers_upload_args(lnG, H, params, state, nx, ny, w.n_walkers(), w.n_params(), w.bounds());
                 int code;
                 {
                     py::gil_scoped_release release;
                     code = w.upload(u.lnG, u.H, u.params, u.state);
                 }
                 if (code != 0) throw std::runtime_error("CUDA error: " + w.error());
             },
             py::arg("lnG"), py::arg("H"), py::arg("params"), py::arg("state"), py::arg("nx"), py::arg("ny"))
        .def_property_readonly("walker_count", &WlmcWalkers::n_walkers)
        .def_property_readonly("n_params", &WlmcWalkers::n_params);
#else
    m.attr("cuda_built") = false;
    m.def("cuda_device_count", []() { return 0; }, "Number of usable CUDA devices (0: built without CUDA).");
#endif
}
